"""Property: after any sequence of upserts, deletes, settles, snapshots and restarts, the cache equals a
model that replays the same log, with either key index. Merges, compactions and (in one run each) wide
string offsets and colliding key hashes are forced often by tiny thresholds."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hub.cache.columns as columns_module
import hub.cache.key_index as key_index_module
import hub.cache.table as table_module
from hub.cache.claims import Claim, Op, compile_claims
from hub.cache.columns import CodeColumn
from hub.cache.snapshot import read_snapshot, write_snapshot
from hub.cache.table import ResourceTable
from hub.cache.verify import verify_many, verify_one
from hub.catalogue.model import load_builtin
from hub.datagen.city import credit_codes
from hub.records.change import Change

SPEC = load_builtin().resource("credit.list_entry")
PARTITIONS = 3
CODES = credit_codes(1, 4)
KEYS = [f"E{i}" for i in range(5)]
IDENTITY = "cluster/topic"

dates = st.dates(
    min_value=__import__("datetime").date(2015, 1, 1), max_value=__import__("datetime").date(2018, 12, 31)
).map(lambda d: d.isoformat())
records = st.fixed_dictionaries(
    {
        "credit_code": st.sampled_from(CODES),
        "category": st.sampled_from(["abnormal_operation", "serious_violation", "admin_penalty"]),
        "reason": st.one_of(st.none(), st.text(alphabet="原因甲乙丙ab", min_size=1, max_size=6)),
        "listed_on": dates,
        "removed_on": st.one_of(st.none(), dates),
        "measures": st.lists(
            st.sampled_from(["restrict_bidding", "restrict_loans", "restrict_honours"]), unique=True, max_size=3
        ),
    }
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.sampled_from(KEYS), records),
        st.tuples(st.just("delete"), st.sampled_from(KEYS), st.none()),
        st.tuples(st.just("apply"), st.integers(1, 8), st.none()),
        st.tuples(st.just("apply"), st.integers(1, 3), st.none()),
        st.tuples(st.just("settle"), st.none(), st.none()),
        st.tuples(st.just("snapshot"), st.none(), st.none()),
        st.tuples(st.just("restart"), st.none(), st.none()),
    ),
    max_size=60,
)


class Log:
    """A stand-in for a topic: per-partition logs of keyed changes."""

    def __init__(self) -> None:
        self.partitions: list[list[Change]] = [[] for _ in range(PARTITIONS)]

    def append(self, key: str, value: bytes | None) -> None:
        p = sum(key.encode()) % PARTITIONS
        self.partitions[p].append(Change(key, value, p, len(self.partitions[p]), 1000))

    def after(self, offsets: tuple[int, ...]) -> list[Change]:
        tail = [c for p in range(PARTITIONS) for c in self.partitions[p][offsets[p] :]]
        return sorted(tail, key=lambda c: (c.offset, c.partition))


def model_of(log: Log, upto: tuple[int, ...] | None = None) -> dict[str, dict]:
    state: dict[str, dict] = {}
    changes = log.after((0,) * PARTITIONS)
    if upto is not None:
        changes = [c for c in changes if c.offset < upto[c.partition]]
    for change in changes:
        if change.value is None:
            state.pop(change.key, None)
        else:
            state[change.key] = orjson.loads(change.value)
    return state


def assert_equal(table: ResourceTable, model: dict[str, dict]) -> None:
    v = table.version
    assert v.live == len(model)
    empty = dict.fromkeys(f.name for f in SPEC.fields)
    for key in KEYS:
        row = v.row(key)
        if key not in model:
            assert row < 0
            continue
        got = v.record(row)
        want = {**empty, **model[key]}
        want["measures"] = want["measures"] or None
        assert got == want
    for code in CODES:
        want_rows = sorted(k for k, r in model.items() if r["credit_code"] == code)
        got_rows = sorted(v.record(r)["entry_id"] for r in v.rows_by("credit_code", code))
        assert got_rows == want_rows
    claims = [
        Claim("category", Op.EQUALS, ("serious_violation",)),
        Claim("removed_on", Op.AFTER, ("2017-06-01",), or_unset=True),
        Claim("measures", Op.CONTAINS, ("restrict_bidding",)),
    ]
    compiled = compile_claims(SPEC, claims)
    batch = verify_many(v, "credit_code", CODES, compiled)
    for i, code in enumerate(CODES):
        mine = [r for r in model.values() if r["credit_code"] == code]
        holds = [
            [
                r["category"] == "serious_violation",
                r["removed_on"] is None or r["removed_on"] > "2017-06-01",
                "restrict_bidding" in r["measures"],
            ]
            for r in mine
        ]
        assert batch.found[i] == bool(mine)
        assert batch.match[i] == any(all(h) for h in holds)
        assert [bool(c[i]) for c in batch.claims] == [any(h[j] for h in holds) for j in range(3)]
        single = verify_one(v, "credit_code", code, compiled)
        assert (single.found, single.match) == (bool(batch.found[i]), bool(batch.match[i]))
        assert single.claims == ([any(h[j] for h in holds) for j in range(3)] if mine else [False] * 3)
    by_key = verify_many(v, "entry_id", KEYS, compiled)
    assert list(by_key.found) == [k in model for k in KEYS]


@pytest.fixture(
    autouse=True, params=["int32 offsets", "offsets widened to int64", "colliding key hashes", "a dict key index"]
)
def tiny_thresholds(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    assert SPEC.key_index == "hashed"
    monkeypatch.setattr(table_module, "DELTA_MIN", 3)
    monkeypatch.setattr(table_module, "COMPACT_MIN_DEAD", 2)
    if request.param == "offsets widened to int64":  # as past 2 GiB of a column's text, here past 40 bytes
        monkeypatch.setattr(columns_module, "INT32_MAX", 40)
    if request.param == "colliding key hashes":  # five keys, three hashes: the key index's collision path
        monkeypatch.setattr(key_index_module, "key_hash", lambda key: hash(key) % 3)
    if request.param == "a dict key index":
        monkeypatch.setitem(globals(), "SPEC", SPEC.model_copy(update={"key_index": "dict"}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations)
def test_cache_equals_replayed_log(ops) -> None:
    log = Log()
    table = ResourceTable(SPEC, PARTITIONS)
    applied = (0,) * PARTITIONS
    with tempfile.TemporaryDirectory() as tmp:
        snapshots = Path(tmp)
        for op, key, payload in ops:
            if op == "upsert":
                log.append(key, orjson.dumps({"entry_id": key, **payload}))
            elif op == "delete":
                log.append(key, None)
            elif op == "apply":  # the feeder applies whatever arrived, in micro-batches
                tail = log.after(table.version.watermark.offsets)
                for start in range(0, len(tail), key):
                    table.apply(tail[start : start + key])
            elif op == "settle":  # the topics went quiet: merged indexes, fitted buffers
                table.settle()
            elif op == "snapshot":
                write_snapshot(snapshots, table.version, IDENTITY)
            else:  # restart: a new replica loads the last snapshot and replays the tail
                table = ResourceTable(SPEC, PARTITIONS)
                loaded = read_snapshot(snapshots, SPEC, IDENTITY, PARTITIONS)
                if loaded is not None:
                    table.load(*loaded)
        table.apply(log.after(table.version.watermark.offsets))
        applied = table.version.watermark.offsets
        assert applied == tuple(len(p) for p in log.partitions)
        assert_equal(table, model_of(log))


def test_snapshot_of_another_topic_is_ignored(tmp_path: Path) -> None:
    table = ResourceTable(SPEC, PARTITIONS)
    table.apply(
        [
            Change(
                "E1",
                orjson.dumps(
                    {"entry_id": "E1", "credit_code": CODES[0], "category": "honour", "listed_on": "2017-01-01"}
                ),
                0,
                0,
            )
        ]
    )
    write_snapshot(tmp_path, table.version, "cluster-a/topic-1")
    assert read_snapshot(tmp_path, SPEC, "cluster-a/topic-1", PARTITIONS) is not None
    assert read_snapshot(tmp_path, SPEC, "cluster-a/topic-2", PARTITIONS) is None
    assert read_snapshot(tmp_path, SPEC, "cluster-a/topic-1", PARTITIONS + 1) is None


def test_a_record_whose_key_field_is_not_its_key_is_skipped() -> None:
    """The key index checks a key against the key column, so the two must agree."""
    table = ResourceTable(SPEC, 1)
    entry = {"credit_code": CODES[0], "category": "honour", "listed_on": "2017-01-01"}
    table.apply(
        [
            Change("E1", orjson.dumps({"entry_id": "E1", **entry}), 0, 0),
            Change("E2", orjson.dumps({"entry_id": "E3", **entry}), 0, 1),
        ]
    )
    table.settle()
    v = table.version
    assert (table.rejected, v.live, v.watermark.offsets) == (1, 1, (2,))
    assert [v.row(k) >= 0 for k in ("E1", "E2", "E3")] == [True, False, False]


def test_churn_keeps_memory_bounded() -> None:
    """An update-heavy stream: rows, index and buffers stay proportional to the live keys."""
    table = ResourceTable(SPEC, 1)
    offset = 0
    sizes = []
    for round_ in range(40):
        changes = []
        for i in range(500):
            key = f"K{i}"
            changes.append(
                Change(
                    key,
                    orjson.dumps(
                        {
                            "entry_id": key,
                            "credit_code": CODES[i % 4],
                            "category": "honour",
                            "listed_on": "2017-01-01",
                            "reason": f"round {round_}",
                        }
                    ),
                    0,
                    offset,
                )
            )
            offset += 1
        table.apply(changes)
        sizes.append((table.version.n_rows, table.version.nbytes))
    assert table.version.live == 500
    assert table.compactions > 0
    assert max(n for n, _ in sizes) <= 500 + max(table_module.COMPACT_MIN_DEAD, 500 // 3) + 500
    assert sizes[-1][1] <= 3 * sizes[1][1]
    assert np.all(table.version.rows([f"K{i}" for i in range(500)]) >= 0)


def test_code_columns_widen_their_codes_as_categories_grow() -> None:
    column = CodeColumn(SPEC.field("category"))
    values = [f"c{i}" for i in range(32_896)]
    appended: list[str | None] = []
    for chunk, dtype in ((values[:128], np.int8), (values[128:256], np.int16), (values[256:], np.int32)):
        column.append(pa.array([*chunk, None]))
        appended += [*chunk, None]
        assert column.codes.arr.dtype == dtype
    assert column.take(np.arange(column.codes.n)).to_pylist() == appended
    assert column.value(129) == "c128" and not column.is_set(128)
