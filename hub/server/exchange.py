"""Exchange.Publish: validate, produce with acks=all, answer after Kafka acknowledged.

A batch comes as ``records`` (one message each, validated one by one) or as ``jsonl`` (validated column
by column: hub.records.batch_validation); either way each record gets the same outcome and message.
"""

from __future__ import annotations

import grpc
from grpc import aio

from hub.catalogue.model import ResourceSpec
from hub.errors import InvalidArgument
from hub.governance.catalogue import resource_key
from hub.governance.identity import current_caller
from hub.records import codec
from hub.records.batch_validation import BatchValidator
from hub.records.validation import Accepted, RecordValidator, Rejection
from hub.server.deps import Deps
from hub.server.interceptors import note_access
from hub.v1 import exchange_pb2, exchange_pb2_grpc

OK = grpc.StatusCode.OK.value[0]
INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
MAX_RECORDS = 10000


class ExchangeService(exchange_pb2_grpc.ExchangeServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._validators: dict[tuple[str, int], BatchValidator] = {}

    def _validator(self, spec: ResourceSpec) -> BatchValidator:
        key = (spec.name, self._deps.catalogue.version(resource_key(spec.name)))
        validator = self._validators.get(key)
        if validator is None or validator.spec is not spec:
            validator = self._validators[key] = BatchValidator(RecordValidator(spec))
        return validator

    async def Publish(
        self, request: exchange_pb2.PublishRequest, context: aio.ServicerContext
    ) -> exchange_pb2.PublishResponse:
        deps = self._deps
        spec = deps.catalogue.resource(request.resource)
        lines = BatchValidator.lines(request.jsonl)
        count = len(request.records) or len(lines)
        note_access("publish", spec.name, detail=f"{count} records")
        deps.policy.publish(current_caller.get(), spec)
        if request.records and lines:
            raise InvalidArgument("jsonl: set records or jsonl, not both", field="jsonl")
        if not count:
            raise InvalidArgument("records: must not be empty", field="records")
        if count > MAX_RECORDS:
            raise InvalidArgument(f"records: at most {MAX_RECORDS} per call, got {count}", field="records")
        validator = self._validator(spec)
        if lines:
            outcomes = validator.validate(lines)
        else:
            validate = validator.exact.validate
            outcomes = [validate(i, r.key, r.json, r.delete) for i, r in enumerate(request.records)]
        accepted = [o for o in outcomes if isinstance(o, Accepted)]
        if not accepted:
            rejected = [o for o in outcomes if isinstance(o, Rejection)]  # all of them
            shown = "; ".join(o.message for o in rejected[:5])
            more = f" (and {len(rejected) - 5} more)" if len(rejected) > 5 else ""
            raise InvalidArgument(
                f"every record was rejected: {shown}{more}",
                field=rejected[0].field,
                violations=[(f"records[{o.index}]" + (f".{o.field}" if o.field else ""), o.message) for o in rejected],
            )

        trace_id = request.trace_id or codec.new_trace_id()
        headers = codec.headers(spec.provider, spec.schema_version, trace_id)
        deliveries = await deps.producer.send(
            deps.topics.resource(spec.name), [(a.key.encode(), a.value) for a in accepted], headers
        )

        response = exchange_pb2.PublishResponse(trace_id=trace_id)
        results = response.results
        highest: dict[int, int] = {}
        delivered = iter(deliveries)
        ok = 0
        for outcome in outcomes:
            if isinstance(outcome, Rejection):
                results.add(code=INVALID, message=outcome.message, field=outcome.field, key=outcome.key)
                continue
            d = next(delivered)
            if d.error is None:
                ok += 1
                results.add(code=OK, key=outcome.key, partition=d.partition, offset=d.offset)
                if d.offset > highest.get(d.partition, -1):
                    highest[d.partition] = d.offset
            else:
                results.add(
                    code=UNAVAILABLE,
                    key=outcome.key,
                    message=f"records[{outcome.index}]: Kafka did not acknowledge: {d.error.str()}; safe to retry",
                )
        response.accepted = ok
        response.rejected = len(outcomes) - ok
        for p, o in sorted(highest.items()):
            response.offsets.add(partition=p, offset=o)
        return response
