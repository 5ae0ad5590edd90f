"""Reconciliation of a department's ledger (CSV, Excel, PostgreSQL) with the platform; the report and
alerts on the command line."""

from __future__ import annotations

import contextlib
import io
import uuid
from pathlib import Path

import pytest

from hub.cli import main
from hub.datagen.departments import write_xlsx
from hub.datagen.exports import write_csv
from hub.datagen.supervision import Ledger, ledger
from hub.supervision.powers import load_seed
from hub.v1 import supervision_pb2 as sv
from tests.hubtest import RunningHub
from tests.supervision_kit import DECIDE, MARKET, PENALTY, load_power_list, ms, step, stub

CASES = 12


@pytest.fixture(scope="module")
def decided(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory):
    """A hub where the market regulator decided CASES penalty cases, and its ledger."""
    from tests.hubtest import running_hub

    # No sweep of its own: the test sweeps as of a date in 2017, not as of today.
    prefix = f"l{uuid.uuid4().hex[:10]}."
    with running_hub(kafka_bootstrap, prefix, tmp_path_factory.mktemp("hub"), supervision_sweep_s=86400) as hub:
        load_power_list(hub)
        for n in range(CASES):
            case = f"CF-L{n:03d}"
            for day, name in enumerate(("accept", "investigate", "inform")):
                step(hub, case, PENALTY, name, ms(f"2017-11-{day + 1:02d}"))
            step(hub, case, PENALTY, "decide", ms("2017-11-06"), **{**DECIDE, "decision": f"罚款{n + 1}000元"})
        decisions = stub(hub, MARKET).ListDecisions(sv.ListDecisionsRequest(), timeout=30).decisions
        rows = [
            {f: getattr(d, f) for f in ("case_number", "item_code", "decided_on", "outcome", "decision")}
            for d in decisions
        ]
        penalties = [i.code for i in load_seed() if i.department == MARKET and i.category == "penalty"]
        yield hub, ledger(rows, penalties)


def cli(hub: RunningHub, *args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["supervise", *args, "--hub", hub.address, "--department", MARKET]) == 0
    return out.getvalue()


def found(printed: str, what: str) -> list[str]:
    line = next(x for x in printed.splitlines() if x.startswith(what))
    return [w for w in line.split(": ", 1)[1].split() if not w.startswith("[")]


def check(printed: str, planted: Ledger) -> None:
    assert len(planted.off_platform) == 200
    assert found(printed, "off the platform") == planted.off_platform
    assert found(printed, "differing") == planted.differing and "[decision]" in printed
    assert found(printed, "missing from the ledger") == planted.missing


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_ledger_file_finds_exactly_the_planted_cases(decided, tmp_path: Path, kind: str) -> None:
    hub, planted = decided
    path = tmp_path / f"台账.{kind}"
    if kind == "csv":
        write_csv(path, planted.rows)
    else:
        write_xlsx(path, planted.rows)
    check(cli(hub, "reconcile", "--ledger", str(path)), planted)


def test_ledger_in_postgres(decided, postgres_dsn: str) -> None:
    import psycopg
    from psycopg import sql

    hub, planted = decided
    columns = list(planted.rows[0])
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS penalty_ledger")
        conn.execute(
            sql.SQL(
                "CREATE TABLE penalty_ledger ({}, updated_at timestamptz DEFAULT now() - interval '1 minute')"
            ).format(sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in columns))
        )
        with conn.cursor().copy(sql.SQL("COPY penalty_ledger ({}) FROM STDIN").format(names)) as copy:
            for row in planted.rows:
                copy.write_row([row[c] for c in columns])
    check(cli(hub, "reconcile", "--postgres", postgres_dsn, "--table", "penalty_ledger"), planted)


def test_report_and_alerts_on_the_command_line(decided, tmp_path: Path) -> None:
    hub, _ = decided
    printed = cli(
        hub, "report", "--month", "2017-11", "--csv", str(tmp_path / "r.csv"), "--chart", str(tmp_path / "r.png")
    )
    assert "运行情况通报 2017-11" in printed and "market_regulation" in printed
    assert (tmp_path / "r.csv").read_text().startswith('"group","name","cases"')
    assert (tmp_path / "r.png").stat().st_size > 10_000
    hub.server.supervision.book.sweep(ms("2017-12-29"))  # the cases were never delivered
    printed = cli(hub, "alerts", "--status", "escalated")
    assert f"{CASES * 2} alerts" in printed  # a step overrun and a case overrun each
    with pytest.raises(SystemExit, match=r"^PERMISSION_DENIED: department: market_regulation may list only its own"):
        cli(hub, "alerts", "--of", "approval_bureau")
