"""Synthetic administrative-power data at the seeds' scale, deterministic from one seed.

- :func:`power_list`: 2,686 items for 27 departments (the seeded list's departments and eleven
  more), names and legal bases drawn from the seeded items of the same category;
- :func:`step_events`: a year of cases (566,547 by default: the platform's January–November 2017)
  as step events in the report's columns, built with numpy (about 2.3M events in seconds);
- :func:`ledger`: a department's own decision ledger: its platform decisions, about 200 penalty
  decisions that never went through the platform, a few that differ and a few left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from hub.governance.workdays import WorkCalendar
from hub.records.reference import DEYANG_CODES
from hub.supervision.casebook import EVENT_SCHEMA
from hub.supervision.powers import CATEGORY_CODES, PowerItem, item_code, load_seed, process_steps, seed_processes
from hub.supervision.reconcile import LEDGER_COLUMNS

CITY_ITEMS, CITY_DEPARTMENTS, CITY_CASES = 2686, 27, 566_547
# The city's other departments with power items (not on the exchange's catalogue until registered).
EXTRA_DEPARTMENTS = {
    "housing_construction": "德阳市住房和城乡建设局",
    "ecology_environment": "德阳市生态环境局",
    "water_resources": "德阳市水利局",
    "agriculture_rural": "德阳市农业农村局",
    "commerce": "德阳市商务局",
    "urban_management": "德阳市城市管理行政执法局",
    "forestry": "德阳市林业局",
    "statistics": "德阳市统计局",
    "audit": "德阳市审计局",
    "ethnic_religious": "德阳市民族宗教事务局",
    "veterans_affairs": "德阳市退役军人事务局",
}
# Power lists are mostly penalties (the seeds' 4,435 items: about three in five).
_CATEGORY_WEIGHTS = {
    "penalty": 0.58,
    "licence": 0.1,
    "coercive": 0.05,
    "levy": 0.02,
    "payment": 0.03,
    "inspection": 0.08,
    "confirmation": 0.06,
    "reward": 0.02,
    "ruling": 0.01,
    "other": 0.05,
}
_PROMISED = np.array([5, 10, 15, 20, 30, 60, 90])
# ...but most cases are licences, confirmations and payments: a penalty item is used far less often.
_USE = {"penalty": 0.12, "coercive": 0.1, "inspection": 0.5, "ruling": 0.3}


def power_list(seed: int = 13, n_items: int = CITY_ITEMS, n_departments: int = CITY_DEPARTMENTS) -> list[PowerItem]:
    rng = np.random.default_rng(seed)
    seeded = load_seed()
    departments = list(dict.fromkeys(i.department for i in seeded)) + list(EXTRA_DEPARTMENTS)
    departments = departments[:n_departments]
    processes = seed_processes()
    templates: dict[str, list[PowerItem]] = {}
    for item in seeded:
        templates.setdefault(item.category, []).append(item)
    categories = list(_CATEGORY_WEIGHTS)
    weights = np.array(list(_CATEGORY_WEIGHTS.values()))
    drawn = rng.choice(len(categories), n_items, p=weights / weights.sum())
    items = []
    counts: dict[tuple[str, str], int] = {}
    for n, c in enumerate(drawn):
        department = departments[n % len(departments)]
        category = categories[c]
        template = templates[category][int(rng.integers(len(templates[category])))]
        days = int(_PROMISED[rng.integers(len(_PROMISED))])
        counts[department, category] = counts.get((department, category), 0) + 1
        k = counts[department, category]
        items.append(
            PowerItem(
                item_code(department, category, k),
                department,
                f"{template.name}（{CATEGORY_CODES[category]}{k:03d}）",
                category,
                template.legal_basis,
                days,
                process_steps(processes[category], days),
                category in ("penalty", "coercive") and rng.random() < 0.1,
            )
        )
    return items


@dataclass(frozen=True)
class YearOfCases:
    events: pa.Table  # EVENT_SCHEMA
    items: pa.Table  # code, department
    n_cases: int


def step_events(
    items: list[PowerItem], n_cases: int = CITY_CASES, seed: int = 13, year: int = 2017, overrun: float = 0.02
) -> YearOfCases:
    """Cases accepted on working days from January to November, each step within its limit except
    ``overrun`` of them; a fifth of the items are never used."""
    rng = np.random.default_rng(seed)
    calendar = WorkCalendar()
    used = rng.permutation(len(items))[: int(len(items) * 0.8)]
    popularity = rng.lognormal(0, 1.5, len(used)) * np.array([_USE.get(items[k].category, 1.0) for k in used])
    item_of_case = used[rng.choice(len(used), n_cases, p=popularity / popularity.sum())]
    # Per item: its steps (legal review only where decisions are major), padded to the longest.
    flows = [[s for s in i.steps if not s.optional or i.major] for i in items]
    width = max(map(len, flows))
    n_steps = np.array([len(f) for f in flows])
    limits = np.zeros((len(items), width), dtype=np.int32)
    vocabulary = sorted({s.name for flow in flows for s in flow})
    names = np.zeros((len(items), width), dtype=np.int32)
    for k, flow in enumerate(flows):
        limits[k, : len(flow)] = [s.limit_days for s in flow]
        names[k, : len(flow)] = [vocabulary.index(s.name) for s in flow]
    per_case = n_steps[item_of_case]
    case_of_event = np.repeat(np.arange(n_cases), per_case)
    starts = np.cumsum(per_case) - per_case
    position = np.arange(len(case_of_event)) - np.repeat(starts, per_case)
    item_of_event = item_of_case[case_of_event]
    limit = limits[item_of_event, position]
    took = np.floor(rng.random(len(limit)) * (limit + 1)).astype(np.int32)
    late = rng.random(len(limit)) < overrun
    took = np.where(late, limit + rng.integers(1, 6, len(limit)), took)
    took[position == 0] = 0
    elapsed = np.cumsum(took) - np.repeat(np.cumsum(took)[starts] - took[starts], per_case)
    first, last = np.datetime64(f"{year}-01-01"), np.datetime64(f"{year}-11-30")
    span = np.busday_count(first, last)
    accepted = np.busday_offset(first, rng.integers(0, span, n_cases), roll="forward")
    day = np.busday_offset(accepted[case_of_event], elapsed, roll="forward")
    seconds = rng.integers(9 * 3600, 17 * 3600, len(day))
    at_ms = (day.astype("datetime64[ms]").astype(np.int64)) + seconds * 1000 - calendar.OFFSET_MS
    promised = np.array([i.promised_days for i in items], dtype=np.int32)[item_of_event]
    divisions = pa.array(["510600", *DEYANG_CODES])
    division_of_case = rng.choice(len(divisions), n_cases, p=[0.4, *([0.1] * 6)])
    case_numbers = pa.array([f"DY{year}{n:07d}" for n in range(n_cases)])
    codes = pa.array([i.code for i in items])
    item_arrays = pa.table({"code": codes, "department": [i.department for i in items]})
    events = pa.table(
        {
            "case_number": case_numbers.take(case_of_event),
            "item_code": codes.take(item_of_event),
            "category": pa.array([i.category for i in items]).take(item_of_event),
            "department": item_arrays["department"].take(item_of_event),
            "division": divisions.take(division_of_case[case_of_event]),
            "step": pa.array(vocabulary).take(names[item_of_event, position]),
            "at_ms": at_ms,
            "step_days": took,
            "case_days": elapsed.astype(np.int32),
            "promised_days": promised,
            "closes": position == per_case[case_of_event] - 1,
        },
        schema=EVENT_SCHEMA,
    )
    return YearOfCases(events, item_arrays, n_cases)


@dataclass(frozen=True)
class Ledger:
    rows: list[dict]  # with the department's own (Chinese) column names
    off_platform: list[str]
    differing: list[str]
    missing: list[str]


def ledger(
    decisions: list[dict], penalty_items: list[str], seed: int = 13, off_platform: int = 200, differing: int = 3,
    missing: int = 2,
) -> Ledger:  # fmt: skip
    """A department's ledger of its ``decisions`` (case_number, item_code, decided_on, outcome,
    decision) with ``off_platform`` penalty decisions added that never went through the platform,
    ``differing`` changed and ``missing`` left out."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(decisions))
    changed = {decisions[i]["case_number"] for i in order[:differing]}
    left_out = {decisions[i]["case_number"] for i in order[differing : differing + missing]}
    rows = []
    for d in decisions:
        if d["case_number"] in left_out:
            continue
        row = dict(d)
        if d["case_number"] in changed:
            row["decision"] = d["decision"] + "（台账记为减半）"
        rows.append(row)
    start = dt.date(2017, 1, 3)
    added = []
    for n in range(off_platform):
        case = f"ZF{2017}{n:05d}"
        added.append(case)
        rows.append(
            {
                "case_number": case,
                "item_code": penalty_items[int(rng.integers(len(penalty_items)))],
                "decided_on": (start + dt.timedelta(days=int(rng.integers(0, 330)))).isoformat(),
                "outcome": "penalised",
                "decision": f"罚款{int(rng.integers(1, 50)) * 1000}元",
            }
        )
    native = {v: k for k, v in LEDGER_COLUMNS.items()}
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    return Ledger(
        [{native[k]: v for k, v in r.items()} for r in shuffled], sorted(added), sorted(changed), sorted(left_out)
    )
