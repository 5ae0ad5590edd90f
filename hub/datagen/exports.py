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
from hub.datagen import reference as ref
from hub.datagen.city import City, CitySize

RESIDENT_COLUMNS = [
    "GMSFHM",
    "XM",
    "XBDM",
    "MZDM",
    "CSRQ",
    "HJDZ_XZQHDM",
    "HJDZ_QHNXXDZ",
    "HH",
    "YHZGXDM",
    "RYZTDM",
    "DJRQ",
    "GXSJ",
]
CREDIT_COLUMNS = ["记录编号", "统一社会信用代码", "类别", "事由", "决定机关", "列入日期", "移出日期", "惩戒措施"]
PERMIT_NOTE = "（依法须经批准的项目，经相关部门批准后方可开展经营活动）"


def _compact(iso: str | None) -> str:
    return iso.replace("-", "") if iso else ""


def resident_row(r: dict) -> list[str]:
    rid = r["resident_id"]
    return [
        rid.lower() if rid.endswith("X") and rid[7] in "02468" else rid,  # some systems store a lower-case x
        r["name"],
        r["gender"],
        r["ethnicity"] or "",
        _compact(r["birth_date"]),
        r["district_code"],
        r["address"] or "",
        r["household_id"] or "",
        r["relation_to_head"] or "",
        ref.PERSON_STATUS[r["status"]],
        _compact(r["registered_on"]),
        f"{r['registered_on']} 09:30:00",
    ]


def entity_row(e: dict) -> dict:
    y, m, d = e["established_on"].split("-")
    scope = "；".join(ref.SCOPE_TEXT[s] for s in e["business_scope"])
    if any(s[0] in e["business_scope"] and s[2] for s in ref.SCOPE_ITEMS):
        scope += PERMIT_NOTE
    district = e["district_code"]
    return {
        "TYSHXYDM": e["credit_code"],
        "ZTMC": e["name"],
        "ZTLX": ref.ENTITY_TYPES[e["credit_code"][:2]][1],
        "FDDBR": e["legal_rep_name"],
        "FDDBRZJHM": e["legal_rep_id"],
        "ZS": e["address"],
        "ZCZB": f"{e['registered_capital']:.4f}",
        "CLRQ": f"{y}年{m}月{d}日",
        "DJZT": ref.ENTITY_STATUS[e["status"]],
        "JYFW": scope,
        "DZHY": e["registration_items"],
        "DJJG": f"德阳市{ref.DEYANG_NAMES[district]}市场监督管理局",
        "HZRQ": e["approved_on"],
    }


def credit_row(c: dict, department_names: dict[str, str]) -> list[str]:
    return [
        c["entry_id"],
        c["credit_code"],
        ref.CREDIT_LABELS[c["category"]],
        c["reason"] or "",
        department_names[c["authority"]],
        c["listed_on"].replace("-", "/"),
        (c["removed_on"] or "").replace("-", "/"),
        "、".join(ref.MEASURES[m] for m in c["measures"]),
    ]


def _defective_resident(row: list[str], rng: random.Random) -> list[str]:
    kind = rng.randrange(3)
    if kind == 0:
        row[0] = row[0][:17] + ("0" if row[0][17] != "0" else "1")  # wrong check digit
    elif kind == 1:
        row[4] = row[4][:4] + "0230"  # 30 February
    else:
        row[9] = "9"  # unknown status code
    return row


@dataclass(frozen=True)
class ExportSet:
    root: Path
    files: dict[str, Path]  # connector short name → file
    counts: dict[str, int]


def _write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> int:
    n = 0
    with path.open("w", encoding="utf-8-sig", newline="") as f:  # Excel-friendly, as offices export
        w = csv.writer(f)
        w.writerow(header)
        for row in rows:
            w.writerow(row)
            n += 1
    return n


def _write_jsonl(path: Path, rows: Iterable[dict]) -> int:
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

    def residents() -> Iterator[list[str]]:
        for r in city.residents():
            row = resident_row(r)
            yield _defective_resident(row, rng) if defect_rate and rng.random() < defect_rate else row

    counts = {}
    if progress:
        progress(f"generating {size.residents:,} residents")
    counts["population"] = _write_csv(files["population"], RESIDENT_COLUMNS, residents())
    if progress:
        progress(f"generating {size.entities:,} market entities")
    counts["market"] = _write_jsonl(files["market"], (entity_row(e) for e in city.entities()))
    if progress:
        progress(f"generating ~{size.credit_records:,} credit records")
    counts["credit"] = _write_csv(
        files["credit"], CREDIT_COLUMNS, (credit_row(c, names) for c in city.credit_entries())
    )
    manifest_path.write_bytes(orjson.dumps({"params": wanted, "counts": counts}, option=orjson.OPT_INDENT_2))
    return ExportSet(root, files, counts)
