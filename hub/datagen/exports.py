"""Departments' own export files, in each department's native shape.

These stand in for the departmental systems: the public security bureau's
CSV with its pinyin-initial column codes and YYYYMMDD dates, the market
regulator's JSON Lines with Chinese labels and "2015年03月02日" dates, the
credit platform's CSV with Chinese headers. The connectors in ``connectors/``
map them to the catalogue. A small share of rows can be made defective, as
real exports are, to exercise dead-letter reporting.

Exports are cached by seed and size in a manifest, so a second demo run
reuses them.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from hub.catalogue.model import load_builtin
from hub.datagen import native
from hub.datagen.city import City, CitySize


def _defective_resident(row: dict, rng: random.Random) -> dict:
    kind = rng.randrange(3)
    if kind == 0:
        row["GMSFHM"] = row["GMSFHM"][:17] + ("0" if row["GMSFHM"][17] != "0" else "1")  # wrong check digit
    elif kind == 1:
        row["CSRQ"] = row["CSRQ"][:4] + "0230"  # 30 February
    else:
        row["RYZTDM"] = "9"  # unknown status code
    return row


@dataclass(frozen=True)
class ExportSet:
    root: Path
    files: dict[str, Path]  # connector short name → file
    counts: dict[str, int]


def write_csv(path: Path, rows: Iterable[dict], encoding: str = "utf-8-sig") -> int:
    """Native rows as CSV; UTF-8 with a BOM is what office software exports by default."""
    n = 0
    with path.open("w", encoding=encoding, newline="") as f:
        writer = None
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
            n += 1
    return n


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    n = 0
    with path.open("wb") as f:
        for row in rows:
            f.write(orjson.dumps(row) + b"\n")
            n += 1
    return n


def write_exports(
    seed: int, size: CitySize, root: Path, defect_rate: float = 0.0, progress: Callable[[str], None] | None = None
) -> ExportSet:
    """Generates the city and writes each department's export; reuses a matching earlier set."""
    manifest_path = root / "manifest.json"
    wanted = {"seed": seed, "residents": size.residents, "entities": size.entities, "defect_rate": defect_rate}
    files = {
        "population": root / "public_security" / "czrk.csv",
        "market": root / "market_regulation" / "scztdj.jsonl",
        "credit": root / "credit" / "xyjl.csv",
    }
    if manifest_path.exists():
        manifest = orjson.loads(manifest_path.read_bytes())
        if manifest.get("params") == wanted and all(p.exists() for p in files.values()):
            return ExportSet(root, files, manifest["counts"])
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    city = City(seed, size)
    rng = random.Random(seed + 99)
    names = {d.code: d.name for d in load_builtin().departments}

    def residents() -> Iterator[dict]:
        for r in city.residents():
            row = native.resident(r)
            yield _defective_resident(row, rng) if defect_rate and rng.random() < defect_rate else row

    counts = {}
    if progress:
        progress(f"generating {size.residents:,} residents")
    counts["population"] = write_csv(files["population"], residents())
    if progress:
        progress(f"generating {size.entities:,} market entities")
    counts["market"] = write_jsonl(files["market"], (native.entity(e) for e in city.entities()))
    if progress:
        progress(f"generating ~{size.credit_records:,} credit records")
    counts["credit"] = write_csv(files["credit"], (native.credit_entry(c, names) for c in city.credit_entries()))
    manifest_path.write_bytes(orjson.dumps({"params": wanted, "counts": counts}, option=orjson.OPT_INDENT_2))
    return ExportSet(root, files, counts)
