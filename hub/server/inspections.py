"""Random inspections: file a plan (commitment), draw, record and publish results; overdue alerts."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
import time
from pathlib import Path
from typing import cast

from grpc import aio

from hub.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from hub.governance.identity import HUB_ADMIN, current_caller
from hub.inspections import draw as algorithm
from hub.inspections import pools
from hub.inspections.items import InspectionItem, load_items
from hub.inspections.plans import LEVELS, draw_date, new_plan_id, validate_plan
from hub.inspections.results import (
    CITY,
    OUTCOMES,
    due_ms,
    joint_notices,
    not_found_notice,
    overdue_alerts,
)
from hub.inspections.store import POOL_PART, InspectionStore
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.v1 import inspections_pb2, inspections_pb2_grpc

log = logging.getLogger(__name__)

_OUTCOMES = {name: i + 1 for i, name in enumerate(OUTCOMES)}  # matches the Outcome enum
_OUTCOME_NAMES = {v: k for k, v in _OUTCOMES.items()}


def inspections_topic(prefix: str) -> str:
    return f"{prefix}_inspections"


def seed_key(directory: Path) -> bytes:
    """The hub's secret for draw seeds; shared by replicas through the PKI (or dev-keys) directory."""
    path = directory / "inspection-seed.key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def _item_pb(i: InspectionItem) -> inspections_pb2.InspectionItem:
    return inspections_pb2.InspectionItem(**i.model_dump(exclude={"licence_type"}))


def _plan_pb(entry: dict) -> inspections_pb2.Plan:
    p = entry["plan"]
    return inspections_pb2.Plan(
        **{k: v for k, v in p.items() if k != "filter"},
        filter=inspections_pb2.TargetFilter(**p["filter"]),
        state=entry["state"],
    )


def _draw_pb(d: dict) -> inspections_pb2.Draw:
    return inspections_pb2.Draw(
        seed=d["seed"],
        beacon=d["beacon"],
        beacon_offset=d["beacon_offset"],
        root=d["root"],
        targets=[inspections_pb2.DrawnTarget(**t) for t in d["targets"]],
        drawn_at_ms=d["drawn_at_ms"],
        conflicts_excluded=len(d["conflicts"]),
    )


def _result_pb(r: dict) -> inspections_pb2.Result:
    return inspections_pb2.Result(
        **{k: r[k] for k in ("id", "plan_id", "department", "credit_code", "target_name", "inspected_on")},
        outcome=cast(inspections_pb2.Outcome, _OUTCOMES[r["outcome"]]),
        officers=r["officers"],
        recorded_at_ms=r["recorded_at_ms"],
        publish_due_ms=r["publish_due_ms"],
        published_at_ms=r["published_at_ms"],
    )


class InspectionsService(inspections_pb2_grpc.InspectionsServicer):
    def __init__(self, deps: Deps, store: InspectionStore, key_dir: Path) -> None:
        self._deps = deps
        self._store = store
        self._items = load_items()
        self._seed_key = seed_key(key_dir)
        self._topic = inspections_topic(deps.settings.topic_prefix)

    def _seed(self, plan_id: str) -> str:
        return hmac.new(self._seed_key, b"inspection-seed\x00" + plan_id.encode(), hashlib.sha256).hexdigest()

    def _own_plan(self, plan_id: str, action: str) -> dict:
        entry = self._store.plan(plan_id)
        if entry is None:
            raise NotFound(f"plan_id: no plan {plan_id!r}", field="plan_id")
        caller = current_caller.get().department
        if caller not in (entry["plan"]["department"], HUB_ADMIN):
            raise PermissionDenied(
                f"plan {plan_id} is {entry['plan']['department']}'s: only it may {action} (you are {caller})"
            )
        return entry

    async def ListItems(self, request, context: aio.ServicerContext) -> inspections_pb2.ListItemsResponse:
        found = [i for i in self._items.values() if not request.department or i.department == request.department]
        return inspections_pb2.ListItemsResponse(items=[_item_pb(i) for i in found])

    async def FilePlan(self, request, context: aio.ServicerContext) -> inspections_pb2.FilePlanResponse:
        deps, caller = self._deps, current_caller.get().department
        note_access("inspections.file_plan", pools.TARGETS)
        f = request.filter
        target_filter = pools.TargetFilter(
            f.status or "active", f.district_prefix, tuple(f.entity_types), f.scope_item, f.credit_list, f.off_list
        )
        now_ms = int(time.time() * 1000)
        levels = tuple(request.officer_levels) or LEVELS
        items, ratio_ppm = validate_plan(
            department=caller,
            item_ids=list(request.item_ids),
            items=self._items,
            target_filter=target_filter,
            ratio=request.ratio,
            count=request.count,
            officers_per_target=request.officers_per_target,
            draw_at_ms=request.draw_at_ms,
            window_start=request.window_start,
            window_end=request.window_end,
            levels=levels,
            now_ms=now_ms,
        )
        on = draw_date(request.draw_at_ms)
        read = (pools.TARGETS, pools.CREDIT, pools.LICENCES, pools.OFFICERS)
        versions = {name: deps.cache.version(name) for name in read}
        targets = pools.target_pool(versions, items, target_filter, on)
        officers = pools.officer_pool(versions[pools.OFFICERS], caller, {i.field for i in items}, levels, on)
        if len(officers.officers) < request.officers_per_target:
            raise FailedPrecondition(
                f"officer pool: {len(officers.officers)} officers of {caller} in {sorted({i.field for i in items})} "
                f"hold a certificate valid on {on}; the plan needs {request.officers_per_target} per target"
            )
        plan_id = new_plan_id(caller, dt.datetime.now(CITY))
        plan = {
            "id": plan_id,
            "department": caller,
            "title": request.title or items[0].name,
            "item_ids": [i.id for i in items],
            "filter": {
                "status": target_filter.status,
                "district_prefix": target_filter.district_prefix,
                "entity_types": list(target_filter.entity_types),
                "scope_item": target_filter.scope_item,
                "credit_list": target_filter.credit_list,
                "off_list": target_filter.off_list,
            },
            "ratio_ppm": ratio_ppm,
            "count": request.count,
            "officers_per_target": request.officers_per_target,
            "draw_at_ms": request.draw_at_ms,
            "window_start": request.window_start,
            "window_end": request.window_end,
            "officer_levels": list(levels),
            "filed_at_ms": now_ms,
        }
        commitment = {
            "plan_digest": algorithm.plan_digest(plan),
            "target_pool_digest": algorithm.target_pool_digest(targets),
            "target_pool_size": len(targets),
            "officer_pool_digest": algorithm.officer_pool_digest(officers.officers),
            "officer_pool_size": len(officers.officers),
            "seed_commitment": algorithm.seed_commitment(plan_id, self._seed(plan_id)),
            "watermark": {name: pools.watermark(v) for name, v in versions.items()},
        }
        parts = max(1, -(-len(targets) // POOL_PART))
        pool = [  # written first: a plan is never visible without its pool
            (f"pool:{plan_id}:{i}", {"plan_id": plan_id, "targets": targets[i * POOL_PART : (i + 1) * POOL_PART]})
            for i in range(parts)
        ]
        await deps.write_states(self._topic, pool)
        entry = {
            "plan": plan,
            "state": "committed",
            "items": [{"id": i.id, "name": i.name, "legal_basis": i.legal_basis} for i in items],
            "commitment": commitment,
            "officer_pool": officers.officers,
            "pool_parts": parts,
        }
        await deps.write_state(self._topic, f"plan:{plan_id}", entry)
        return inspections_pb2.FilePlanResponse(
            plan=_plan_pb(entry),
            commitment=inspections_pb2.Commitment(**commitment),  # type: ignore[arg-type]  # the commitment's fields, by name
        )

    async def GetPlan(self, request, context: aio.ServicerContext) -> inspections_pb2.GetPlanResponse:
        entry = self._store.plan(request.id)
        if entry is None:
            raise NotFound(f"id: no plan {request.id!r}", field="id")
        drawn = self._store.draw(request.id)
        return inspections_pb2.GetPlanResponse(
            plan=_plan_pb(entry),
            commitment=inspections_pb2.Commitment(**entry["commitment"]),
            draw=_draw_pb(drawn) if drawn else None,
        )

    async def Draw(self, request, context: aio.ServicerContext) -> inspections_pb2.DrawResponse:
        deps = self._deps
        note_access("inspections.draw", pools.TARGETS, detail=request.plan_id)
        async with deps.exclusive(f"draw:{request.plan_id}"):
            entry = self._own_plan(request.plan_id, "draw it")
            plan = entry["plan"]
            drawn = self._store.draw(plan["id"])
            if drawn is not None:
                return inspections_pb2.DrawResponse(plan=_plan_pb(entry), draw=_draw_pb(drawn))
            now_ms = int(time.time() * 1000)
            if now_ms < plan["draw_at_ms"]:
                raise FailedPrecondition(f"plan {plan['id']}: its draw time is in {plan['draw_at_ms'] - now_ms} ms")
            # Applied up to now: every record written before the draw time is in the store.
            await deps.write_state(self._topic, f"drawing:{plan['id']}", {"plan_id": plan["id"], "at_ms": now_ms})
            beacon_offset, beacon = self._store.beacon_before(plan["draw_at_ms"]) or (-1, algorithm.sha256_hex(b""))
            pool = self._store.target_pool(plan["id"], entry["pool_parts"]) or []
            seed = self._seed(plan["id"])
            if algorithm.seed_commitment(plan["id"], seed) != entry["commitment"]["seed_commitment"]:
                raise FailedPrecondition(
                    f"plan {plan['id']} was committed by a replica with another inspection-seed.key: "
                    "every replica needs the same key (copy it from the PKI directory)"
                )
            key = algorithm.root(
                entry["commitment"]["plan_digest"],
                entry["commitment"]["target_pool_digest"],
                entry["commitment"]["officer_pool_digest"],
                seed,
                beacon,
            )
            n = algorithm.sample_size(len(pool), plan["ratio_ppm"], plan["count"])
            chosen = await asyncio.to_thread(algorithm.select_targets, key, pool, n)
            entities = deps.cache.version(pools.TARGETS)
            residents = deps.cache.version(pools.RESIDENTS)
            officer_ids = self._officer_ids(entry["officer_pool"])
            pairs = pools.conflicts(entities, residents, chosen, officer_ids)
            assignments = await asyncio.to_thread(
                algorithm.assign_officers,
                key,
                chosen,
                entry["officer_pool"],
                plan["officers_per_target"],
                algorithm.conflict_map(pairs),
            )
            names = self._names(entities, chosen)
            drawn = {
                "plan_id": plan["id"],
                "seed": seed,
                "beacon": beacon,
                "beacon_offset": beacon_offset,
                "root": key.hex(),
                "conflicts": pairs,
                "targets": [
                    {"credit_code": a.credit_code, "name": names[a.credit_code], "officers": list(a.officers)}
                    for a in assignments
                ],
                "drawn_at_ms": now_ms,
            }
            await deps.write_state(self._topic, f"draw:{plan['id']}", drawn)
            entry = {**entry, "state": "drawn"}
            await deps.write_state(self._topic, f"plan:{plan['id']}", entry)
            claim_ms = int(deps.settings.notice_claim_limit_s * 1000)
            notices = joint_notices(self._store, plan, names, now_ms, claim_ms)
            await deps.write_states(deps.topics.notices, [(f"notice:{n['id']}", n) for n in notices])
        return inspections_pb2.DrawResponse(plan=_plan_pb(entry), draw=_draw_pb(drawn), joint_notices=len(notices))

    def _officer_ids(self, officers: list[dict]) -> dict[str, str]:
        version = self._deps.cache.version(pools.OFFICERS)
        out: dict[str, str] = {}
        for o in officers:
            row = version.row(o["cert_no"])
            if row >= 0:
                out[o["cert_no"]] = str(version.columns["resident_id"].value(row))
        return out

    @staticmethod
    def _names(entities, codes: list[str]) -> dict[str, str]:
        out = {}
        for code in codes:
            row = entities.row(code)
            out[code] = entities.columns["name"].value(row) if row >= 0 else ""
        return out

    async def RecordResult(self, request, context: aio.ServicerContext) -> inspections_pb2.RecordResultResponse:
        deps = self._deps
        note_access("inspections.record_result", pools.TARGETS, detail=f"{request.plan_id}:{request.credit_code}")
        outcome = _OUTCOME_NAMES.get(request.outcome)
        if outcome is None:
            raise InvalidArgument("outcome: NO_PROBLEM, ORDERED_CORRECTED, CASE_FILED or NOT_FOUND", field="outcome")
        try:
            inspected = dt.date.fromisoformat(request.inspected_on)
        except ValueError:
            raise InvalidArgument(
                f"inspected_on: {request.inspected_on!r} is not a date (YYYY-MM-DD)", field="inspected_on"
            ) from None
        if inspected > dt.datetime.now(CITY).date():
            raise InvalidArgument("inspected_on: in the future", field="inspected_on")
        async with deps.exclusive(f"result:{request.plan_id}:{request.credit_code}"):
            entry = self._own_plan(request.plan_id, "record its results")
            drawn = self._store.draw(request.plan_id)
            if drawn is None:
                raise FailedPrecondition(f"plan {request.plan_id} has not been drawn yet")
            target = next((t for t in drawn["targets"] if t["credit_code"] == request.credit_code), None)
            if target is None:
                raise InvalidArgument(
                    f"credit_code: {request.credit_code!r} was not drawn in plan {request.plan_id}",
                    field="credit_code",
                )
            previous = self._store.result(request.plan_id, request.credit_code)
            if previous is not None and previous["published_at_ms"]:
                raise FailedPrecondition(f"the result for {request.credit_code} is already published")
            now_ms = int(time.time() * 1000)
            s = deps.settings
            result = {
                "id": f"{request.plan_id}:{request.credit_code}",
                "plan_id": request.plan_id,
                "department": entry["plan"]["department"],
                "items": entry["items"],
                "credit_code": request.credit_code,
                "target_name": target["name"],
                "outcome": outcome,
                "inspected_on": inspected.isoformat(),
                "officers": target["officers"],
                "note": request.note.strip(),
                "recorded_at_ms": now_ms,
                "publish_due_ms": due_ms(now_ms, s.inspection_publish_working_days, s.holidays),
                "published_at_ms": 0,
            }
            await deps.write_state(self._topic, f"result:{result['id']}", result)
            if outcome == "not_found":
                notice = not_found_notice(result, now_ms, int(s.notice_claim_limit_s * 1000))
                await deps.write_state(deps.topics.notices, f"notice:{notice['id']}", notice)
        return inspections_pb2.RecordResultResponse(result=_result_pb(result))

    async def PublishResults(self, request, context: aio.ServicerContext) -> inspections_pb2.PublishResultsResponse:
        note_access("inspections.publish", pools.TARGETS, detail=request.plan_id)
        self._own_plan(request.plan_id, "publish its results")
        published = []
        now_ms = int(time.time() * 1000)
        for result in self._store.results(request.plan_id):
            if not result["published_at_ms"]:
                published.append({**result, "published_at_ms": now_ms})
        await self._deps.write_states(self._topic, [(f"result:{r['id']}", r) for r in published])
        return inspections_pb2.PublishResultsResponse(published=[_result_pb(r) for r in published])

    async def ListAlerts(self, request, context: aio.ServicerContext) -> inspections_pb2.InspectionsListAlertsResponse:
        caller = current_caller.get().department
        alerts = [a for a in self._store.alerts() if caller in (HUB_ADMIN, a["department"])]
        return inspections_pb2.InspectionsListAlertsResponse(
            alerts=[inspections_pb2.InspectionAlert(**a) for a in alerts]
        )

    async def raise_alerts(self, every_s: float = 60.0) -> None:
        """Overdue results and publications become alerts, like overdue notices; any replica may write them."""
        s = self._deps.settings
        while True:
            now_ms = int(time.time() * 1000)
            alerts = overdue_alerts(self._store, now_ms, s.inspection_publish_working_days, s.holidays)
            for alert in alerts:
                log.warning("inspection %s of %s: %s", alert["plan_id"], alert["credit_code"], alert["kind"])
            await self._deps.write_states(self._topic, [(f"alert:{a['id']}", a) for a in alerts])
            await asyncio.sleep(every_s)
