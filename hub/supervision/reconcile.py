"""Reconciliation of a department's own ledger with the platform (台账比对).

The ledger arrives through the connector SDK: an Excel or CSV file (:class:`FileSource`) or a
table in the department's PostgreSQL (:class:`PollingSource`). Columns may carry the department's
own names (:data:`LEDGER_COLUMNS`). The comparison is two Arrow joins on the case number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from hub.connect.files import FileSource
from hub.connect.source import Source

# The ledger columns the comparison reads, and the names departments' ledgers give them.
FIELDS = ("case_number", "item_code", "decided_on", "outcome", "decision")
LEDGER_COLUMNS = {"案件编号": "case_number", "事项编码": "item_code", "决定日期": "decided_on", "处理结果": "outcome",
                  "决定内容": "decision"}  # fmt: skip
COMPARED = ("decided_on", "outcome", "decision")


@dataclass(frozen=True)
class Reconciliation:
    off_platform: list[str]  # decisions in the ledger with no case on the platform
    differing: list[tuple[str, str]]  # (case number, the fields that differ)
    missing: list[str]  # platform decisions not in the ledger


def read_source(source: Source) -> pa.Table:
    """Every row the source has now, renamed to FIELDS; raises ValueError naming a bad row or column."""
    rows: list[dict] = []
    source.setup({})
    try:
        while True:
            batch = source.poll(5000)
            if not batch:
                break
            for record in batch:
                if record.error is not None:
                    raise ValueError(f"ledger: {record.error}")
                rows.append({LEDGER_COLUMNS.get(k, k): v for k, v in record.row.items()})
            if source.finished:
                break
    finally:
        source.close()
    for name in FIELDS:
        if rows and name not in rows[0]:
            raise ValueError(f"ledger: no column {name!r} (or {_native(name)!r})")
    return pa.table({name: pa.array([str(r.get(name) or "") for r in rows], pa.string()) for name in FIELDS})


def read_file(path: Path) -> pa.Table:
    return read_source(FileSource(path))


def read_postgres(dsn: str, table: str, key: str = "案件编号", updated: str = "updated_at") -> pa.Table:
    from hub.connect.postgres import PollingSource

    return read_source(PollingSource(dsn, table, key, updated, settle_s=0))


def reconcile(ledger: pa.Table, platform: pa.Table) -> Reconciliation:
    """Both tables have FIELDS; dates as YYYY-MM-DD."""
    ledger = ledger.select(FIELDS)
    platform = platform.select(FIELDS)
    joined = ledger.join(platform, "case_number", join_type="full outer", left_suffix="_ledger", right_suffix="_hub")
    on_ledger = pc.is_valid(joined["item_code_ledger"])
    on_hub = pc.is_valid(joined["item_code_hub"])
    both = joined.filter(pc.and_(on_ledger, on_hub))
    differs = {name: pc.not_equal(both[f"{name}_ledger"], both[f"{name}_hub"]) for name in COMPARED}
    any_differs = pc.or_(pc.or_(differs["decided_on"], differs["outcome"]), differs["decision"])
    differing = both.filter(any_differs)
    flags = {name: differs[name].filter(any_differs).to_pylist() for name in COMPARED}
    return Reconciliation(
        off_platform=sorted(joined.filter(pc.invert(on_hub))["case_number"].to_pylist()),
        differing=sorted(
            (case, ", ".join(n for n in COMPARED if flags[n][i]))
            for i, case in enumerate(differing["case_number"].to_pylist())
        ),
        missing=sorted(joined.filter(pc.invert(on_ledger))["case_number"].to_pylist()),
    )


def _native(name: str) -> str:
    return next(k for k, v in LEDGER_COLUMNS.items() if v == name)
