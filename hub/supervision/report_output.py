"""The monthly report's outputs: a terminal table (rich), CSV and a chart (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv


def print_table(rows: pa.Table, steps: pa.Table, month: str, unused: int, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "group", "name", "cases", "on time", "alerts", "answered", "days/step", "unused items",
        title=f"运行情况通报 {month}",
    )  # fmt: skip
    for r in rows.to_pylist():
        table.add_row(
            r["group"], r["name"], f"{r['cases']:,}", f"{r['on_time_rate']:.1%}", f"{r['alerts_raised']:,}",
            f"{r['alerts_answered']:,}", f"{r['average_step_days']:.2f}", f"{r['unused_items']:,}",
        )  # fmt: skip
    per_step = Table("department", "step", "steps", "average working days", title="各环节平均用时 Time per step")
    for r in steps.to_pylist():
        per_step.add_row(r["department"], r["step"], f"{r['steps']:,}", f"{r['average_days']:.2f}")
    console = Console(width=160)
    console.print(table)
    console.print(per_step)
    console.print(f"{unused:,} items unused this month; computed in {seconds * 1000:.0f} ms")


def write_csv(rows: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(rows, path)


def write_chart(rows: pa.Table, month: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    departments = rows.filter(pa.compute.equal(rows["group"], "department")).to_pylist()
    names = [r["name"] for r in departments]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, max(4, len(names) * 0.3)), sharey=True)
    left.barh(names, [r["on_time_rate"] * 100 for r in departments], color="#4a7")
    left.set_xlabel("on-time rate (%)")
    right.barh(names, [r["alerts_raised"] for r in departments], color="#d94", label="raised")
    right.barh(names, [r["alerts_answered"] for r in departments], color="#48c", label="answered")
    right.set_xlabel("alerts")
    right.legend()
    fig.suptitle(f"Monthly report {month}: per department")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
