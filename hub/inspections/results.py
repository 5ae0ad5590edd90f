"""Results (一公开): the four outcomes, publication deadlines in working days, overdue alerts, and the
notices a draw or a result sends through the notice flow (joint inspections, not found at the address)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from hub.flows.notices import notice_id
from hub.governance.workdays import add_working_days
from hub.inspections.store import InspectionStore

OUTCOMES = ("no_problem", "ordered_corrected", "case_filed", "not_found")
OUTCOME_TEXT = {
    "no_problem": "未发现问题",
    "ordered_corrected": "发现问题已责令整改",
    "case_filed": "发现问题已立案查处",
    "not_found": "通过登记的住所（经营场所）无法联系",
}
MARKET_REGULATOR = "market_regulation"
CITY = dt.timezone(dt.timedelta(hours=8))


def due_ms(start_ms: int, working_days: int, holidays: Iterable[dt.date]) -> int:
    start = dt.datetime.fromtimestamp(start_ms / 1000, CITY)
    return int(add_working_days(start, working_days, holidays).timestamp() * 1000)


def window_end_ms(window_end: str) -> int:
    day = dt.date.fromisoformat(window_end) + dt.timedelta(days=1)
    return int(dt.datetime.combine(day, dt.time(), CITY).timestamp() * 1000)


def _notice(department: str, code: str, name: str, item: str, reason: str, now_ms: int, claim_ms: int) -> dict:
    """A notice in the notice flow's shape (hub.flows.notices), so Notices.Watch/Claim/Feedback serve it."""
    return {
        "id": notice_id(code, item, department),
        "department": department,
        "credit_code": code,
        "entity_name": name,
        "scope_item": item,
        "permit": "",
        "reason": reason,
        "state": "open",
        "created_at_ms": now_ms,
        "registered_at_ms": now_ms,
        "claim_due_ms": now_ms + claim_ms,
        "claimed_at_ms": 0,
        "claimed_by": "",
        "feedback_due_ms": 0,
        "feedback_at_ms": 0,
        "feedback": "",
        "feedback_note": "",
    }


def joint_notices(
    store: InspectionStore, plan: Mapping, targets: Mapping[str, str], now_ms: int, claim_ms: int
) -> list[dict]:
    """进一次门、查多项事: for every other department's drawn plan whose window overlaps this one's and
    that drew a same target, a notice to each department involved, naming the shared window."""
    out = {}
    for other in store.plans():
        o = other["plan"]
        if o["department"] == plan["department"] or other.get("state") != "drawn":
            continue
        if o["window_end"] < plan["window_start"] or plan["window_end"] < o["window_start"]:
            continue
        drawn = store.draw(o["id"])
        shared = sorted(set(targets) & {t["credit_code"] for t in drawn["targets"]}) if drawn else []
        start = max(o["window_start"], plan["window_start"])
        end = min(o["window_end"], plan["window_end"])
        item = f"joint_inspection:{start}..{end}"
        for code in shared:
            for department in (plan["department"], o["department"]):
                notice = _notice(department, code, targets[code], item, "joint_inspection", now_ms, claim_ms)
                notice["feedback_note"] = f"与 {o['id']} / {plan['id']} 联合检查：进一次门、查多项事"
                out[notice["id"]] = notice
    return list(out.values())


def not_found_notice(result: Mapping, now_ms: int, claim_ms: int) -> dict:
    """An entity not found at its registered address goes to the market regulator (经营异常名录)."""
    return _notice(
        MARKET_REGULATOR,
        result["credit_code"],
        result["target_name"],
        f"abnormal_operation:{result['plan_id']}",
        "not_found_at_address",
        now_ms,
        claim_ms,
    )


def overdue_alerts(store: InspectionStore, now_ms: int, working_days: int, holidays: Iterable[dt.date]) -> list[dict]:
    """Alerts that should exist now and do not: drawn targets with no result N working days after the
    window, and recorded results not published by their due time. Deterministic: any replica may write them."""
    holidays = tuple(holidays)
    out = []
    for entry in store.plans():
        plan = entry["plan"]
        drawn = store.draw(plan["id"])
        if drawn is None:
            continue
        result_due = due_ms(window_end_ms(plan["window_end"]), working_days, holidays)
        for target in drawn["targets"]:
            code = target["credit_code"]
            result = store.result(plan["id"], code)
            if result is None:
                kind, due = "result_overdue", result_due
            elif not result["published_at_ms"]:
                kind, due = "publication_overdue", result["publish_due_ms"]
            else:
                continue
            ident = f"{plan['id']}:{code}:{kind}"
            if due < now_ms and store.values.get(f"alert:{ident}") is None:
                out.append(
                    {
                        "id": ident,
                        "plan_id": plan["id"],
                        "department": plan["department"],
                        "credit_code": code,
                        "kind": kind,
                        "due_ms": due,
                    }
                )
    return out
