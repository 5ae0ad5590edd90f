"""``hub draws verify PLAN_ID``: re-runs a draw from what the public site published, and says what differs."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from hub.inspections.draw import verify


def load_material(plan_id: str, site: str = "", path: Path | None = None) -> dict:
    """The published material of a plan: from a saved JSON file, or from the public site."""
    if path is not None:
        return json.loads(path.read_text())
    url = f"{site.rstrip('/')}/plans/{plan_id}.json"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def run(plan_id: str, site: str = "", path: Path | None = None) -> tuple[bool, list[str]]:
    """(verified, lines to print)."""
    try:
        material = load_material(plan_id, site, path)
    except urllib.error.HTTPError as exc:
        return False, [f"plan {plan_id}: the public site answered {exc.code} {exc.reason}"]
    except (OSError, ValueError) as exc:
        return False, [f"plan {plan_id}: could not read the published material: {exc}"]
    if material.get("plan", {}).get("id") != plan_id:
        return False, [f"plan {plan_id}: the material is for plan {material.get('plan', {}).get('id')!r}"]
    problems = verify(material)
    if problems:
        return False, [f"plan {plan_id}: NOT verified"] + [f"  {p}" for p in problems]
    draw = material["draw"]
    officers = {o for t in draw["targets"] for o in t["officers"]}
    return True, [
        f"plan {plan_id}: verified: {len(draw['targets'])} of {len(material['target_pool'])} targets and "
        f"{len(officers)} officers re-run from the published plan, pools, seed and beacon"
    ]
