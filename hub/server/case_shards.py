"""Cases and joint restrictions on a sharded hub: each evidence item is verified by the shard holding
its subject's records (every shard for an item looked up by an indexed field), and an entity's
restrictions are gathered from every shard's share of the credit list. However many cases a call
carries, each other shard gets one call for their evidence and one for their restrictions.

The replica that took the case judges each item from the shards' answers, audits it and records the
case; the shards only verify, under the submitting department's access. A shard with no reachable
replica makes the call UNAVAILABLE (:meth:`~hub.server.shards.ShardRouter.call`), never "no record".
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import grpc
from grpc import aio

from hub.errors import HubError, InvalidArgument, PermissionDenied
from hub.flows.cases import CaseOutcome, CaseRequest, CaseResolver, CaseType, Check, EvidenceResult, Item
from hub.flows.cases import restricted_subject as entity_of
from hub.flows.restrictions import CREDIT_LIST, Restriction, restrictions_of
from hub.governance.identity import current_caller
from hub.server.convert import case_from_pb, watermark_from_pb, watermark_to_pb
from hub.server.deps import Deps
from hub.server.shards import Relayed
from hub.v1 import cases_pb2, cases_pb2_grpc, common_pb2

Case = tuple[cases_pb2.SubmitRequest, CaseRequest]  # as submitted, and as read


def from_replica() -> None:
    """The shards' own calls answer without auditing (the replica that took the case audits): only
    another replica may make them."""
    if not current_caller.get().forwarded:
        raise PermissionDenied("only another replica of this hub may ask a shard for its part of a case")


def _restrictions_here(deps: Deps, query: cases_pb2.RestrictionQuery) -> list[Restriction]:
    credit = deps.cache.version(CREDIT_LIST)
    return restrictions_of(credit, query.credit_code, query.restricted_context, query.date)


async def gathered_restrictions(
    deps: Deps, queries: list[cases_pb2.RestrictionQuery], context: aio.ServicerContext
) -> list[list[Restriction]]:
    """Each query's restrictions from this replica's credit list and, on a sharded hub, every other shard's."""
    found = [_restrictions_here(deps, q) for q in queries]
    router = deps.shards
    others = [i for i in range(router.shard.count) if i != router.shard.index] if queries else []
    request = cases_pb2.FindRestrictionsRequest(queries=queries)
    for answer in await asyncio.gather(*(router.call(i, _find_restrictions, request, context) for i in others)):
        for mine, theirs in zip(found, answer.found, strict=True):
            mine += [Restriction(r.credit_code, r.measure, r.entry_id, r.listed_on) for r in theirs.restrictions]
    return found


def answer_restrictions(deps: Deps, request: cases_pb2.FindRestrictionsRequest) -> cases_pb2.FindRestrictionsResponse:
    from_replica()
    response = cases_pb2.FindRestrictionsResponse()
    for query in request.queries:
        response.found.add().restrictions.extend(
            cases_pb2.Restriction(
                credit_code=r.credit_code, measure=r.measure, entry_id=r.entry_id, listed_on=r.listed_on
            )
            for r in _restrictions_here(deps, query)
        )
    return response


class ShardedCases:
    """Resolves cases across the shards (the asking side) and verifies other replicas' items (the answering side)."""

    def __init__(self, deps: Deps, resolver: CaseResolver) -> None:
        self._deps = deps
        self._resolver = resolver

    def _holders(self, item: Item) -> range | tuple[int, ...]:
        """The shards whose records answer ``item``: its subject's shard when looked up by the resource's
        key, every shard when by an indexed field; this one when the item is refused whatever the data."""
        router = self._deps.shards
        target = self._resolver.target(item)
        if target is None or not item.subject:
            return (router.shard.index,)
        spec, key_field = target
        if key_field != spec.key:
            return range(router.shard.count)
        return (router.owner(item.subject, self._deps.cache.table(spec.name).partitions),)

    async def resolve(self, cases: list[Case], context: aio.ServicerContext) -> list[CaseOutcome | HubError]:
        """Each case's outcome, or why it was refused as a whole (an unknown type, a missing parameter)."""
        resolver, router, caller = self._resolver, self._deps.shards, current_caller.get()
        plans: list[tuple[CaseType, list[Item]] | HubError] = []
        asked: dict[int, list[tuple[int, int]]] = defaultdict(list)  # shard -> (case, item) it verifies
        for c, (_, case) in enumerate(cases):
            try:
                case_type = resolver.check(case)
            except HubError as exc:
                plans.append(exc)
                continue
            items = resolver.items(case, case_type)
            plans.append((case_type, items))
            for i, item in enumerate(items):
                for index in self._holders(item):
                    asked[index].append((c, i))
        restricted = [
            (c, plan[0])
            for c, plan in enumerate(plans)
            if not isinstance(plan, HubError) and plan[0].restricted_context
        ]
        queries = [
            cases_pb2.RestrictionQuery(
                credit_code=entity_of(cases[c][1], case_type),
                restricted_context=case_type.restricted_context,
                date=cases[c][1].date,
            )
            for c, case_type in restricted
        ]

        async def remote(index: int) -> list[Check | HubError]:
            request = cases_pb2.CheckEvidenceRequest(
                queries=[
                    cases_pb2.EvidenceQuery(submitted=cases[c][0], evidence=_item(plans, c, i).evidence.name)
                    for c, i in asked[index]
                ],
                governance_applied=_applied(self._deps.cache.positions(self._deps.topics.governance)),
                corrections_applied=_applied(self._deps.cache.positions(self._deps.topics.corrections)),
            )
            answer = await router.call(index, _check_evidence, request, context)
            return [_check_from_pb(a) for a in answer.answers]

        others = [index for index in asked if index != router.shard.index]
        pending = asyncio.gather(
            asyncio.gather(*(remote(i) for i in others)), gathered_restrictions(self._deps, queries, context)
        )
        parts: dict[tuple[int, int], list[Check | HubError]] = defaultdict(list)
        for c, i in asked.get(router.shard.index, []):  # this shard's share, while the others work
            try:
                parts[c, i].append(resolver.verify(caller, cases[c][1], _item(plans, c, i)))
            except HubError as exc:
                parts[c, i].append(exc)
        answers, found = await pending
        for index, checks in zip(others, answers, strict=True):
            for slot, check in zip(asked[index], checks, strict=True):
                parts[slot].append(check)
        restrictions = {c: measures for (c, _), measures in zip(restricted, found, strict=True)}
        outcomes: list[CaseOutcome | HubError] = []
        for c, plan in enumerate(plans):
            if isinstance(plan, HubError):
                outcomes.append(plan)
                continue
            case_type, items = plan
            judged = [self._judged(item, parts[c, i], cases[c][1].proof_shown) for i, item in enumerate(items)]
            outcomes.append(CaseOutcome(cases[c][1].case_number, case_type, judged, restrictions.get(c, [])))
        return outcomes

    def _judged(self, item: Item, parts: list[Check | HubError], proof_shown: bool) -> EvidenceResult:
        refusals = [p for p in parts if isinstance(p, HubError)]
        if refusals:  # the access and the subject are the same on every shard: one refuses as all would
            return self._resolver.refused(item, refusals[0])
        checks = [p for p in parts if isinstance(p, Check)]
        return self._resolver.judge(item, checks[0] if len(checks) == 1 else Check.merged(checks), proof_shown)

    async def answer(
        self, request: cases_pb2.CheckEvidenceRequest, context: aio.ServicerContext
    ) -> cases_pb2.CheckEvidenceResponse:
        """Another replica's items, verified against this shard's records once this replica knows the
        grants and disputes the asking one knew."""
        from_replica()
        deps = self._deps
        for topic, applied in (
            (deps.topics.governance, request.governance_applied),
            (deps.topics.corrections, request.corrections_applied),
        ):
            await deps.cache.reached(topic, [(p.partition, p.offset) for p in applied], context.time_remaining())
        caller = current_caller.get()
        response = cases_pb2.CheckEvidenceResponse()
        for n, query in enumerate(request.queries):
            try:
                case = case_from_pb(query.submitted)
                items = self._resolver.items(case, self._resolver.check(case))
                item = next((i for i in items if i.evidence.name == query.evidence), None)
                if item is None:
                    raise InvalidArgument(
                        f"queries[{n}].evidence: {query.evidence!r} is not evidence of case type {case.case_type}",
                        field=f"queries[{n}].evidence",
                    )
                check = self._resolver.verify(caller, case, item)
            except HubError as exc:
                response.answers.add(error_code=exc.code.name, error=exc.message)
                continue
            response.answers.add(
                found=check.found,
                match=check.match,
                claims=check.claims,
                disputed_fields=sorted(check.disputed),
                watermark=watermark_to_pb(check.watermark),
                key_field=check.key_field,
            )
        return response


def _applied(positions: tuple[int, ...]) -> list[common_pb2.PartitionOffset]:
    """A state topic's last applied offset per partition (positions are the next offsets to apply)."""
    return [common_pb2.PartitionOffset(partition=p, offset=n - 1) for p, n in enumerate(positions) if n]


def _item(plans: list[tuple[CaseType, list[Item]] | HubError], case: int, index: int) -> Item:
    plan = plans[case]
    assert not isinstance(plan, HubError)  # only planned cases' items are asked for
    return plan[1][index]


def _check_from_pb(answer: cases_pb2.EvidenceAnswer) -> Check | HubError:
    if answer.error_code:
        return Relayed(grpc.StatusCode[answer.error_code], answer.error)
    return Check(
        answer.key_field,
        answer.found,
        answer.match,
        tuple(answer.claims),
        frozenset(answer.disputed_fields),
        watermark_from_pb(answer.watermark),
    )


def _check_evidence(channel: aio.Channel):
    return cases_pb2_grpc.CasesStub(channel).CheckEvidence


def _find_restrictions(channel: aio.Channel):
    return cases_pb2_grpc.CasesStub(channel).FindRestrictions
