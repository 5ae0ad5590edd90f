"""Conversions between the public contract (``hub.v1``) and domain objects."""

from __future__ import annotations

from collections.abc import Iterable

from hub.cache.claims import Claim, Op
from hub.cache.table import Watermark
from hub.catalogue.model import ResourceSpec
from hub.v1 import catalog_pb2, common_pb2, verification_pb2

_OPS = {
    verification_pb2.CLAIM_OP_UNSPECIFIED: Op.EQUALS,
    verification_pb2.CLAIM_OP_EQUALS: Op.EQUALS,
    verification_pb2.CLAIM_OP_NOT_EQUALS: Op.NOT_EQUALS,
    verification_pb2.CLAIM_OP_IN: Op.IN,
    verification_pb2.CLAIM_OP_PREFIX: Op.PREFIX,
    verification_pb2.CLAIM_OP_CONTAINS: Op.CONTAINS,
    verification_pb2.CLAIM_OP_AT_MOST: Op.AT_MOST,
    verification_pb2.CLAIM_OP_AT_LEAST: Op.AT_LEAST,
    verification_pb2.CLAIM_OP_BEFORE: Op.BEFORE,
    verification_pb2.CLAIM_OP_AFTER: Op.AFTER,
    verification_pb2.CLAIM_OP_UNSET: Op.UNSET,
}
_PB_OPS = {op: pb for pb, op in _OPS.items() if pb != verification_pb2.CLAIM_OP_UNSPECIFIED}
_SHARING = {
    "unconditional": catalog_pb2.SHARING_CLASS_UNCONDITIONAL,
    "conditional": catalog_pb2.SHARING_CLASS_CONDITIONAL,
    "not_shared": catalog_pb2.SHARING_CLASS_NOT_SHARED,
}


def claims_from_pb(claims: Iterable) -> list[Claim]:
    """From ``Claim`` or ``ClaimColumn`` messages. Unknown op numbers become INVALID_ARGUMENT later."""
    return [Claim(c.field, _OPS.get(c.op, Op.EQUALS), tuple(c.values), c.or_unset) for c in claims]


def op_to_pb(op: Op) -> int:
    return _PB_OPS[op]


def watermark_to_pb(wm: Watermark) -> common_pb2.Watermark:
    return common_pb2.Watermark(
        offsets=wm.offsets, caught_up_at_ms=wm.caught_up_at_ms, last_record_at_ms=wm.last_record_at_ms
    )


def wanted_offsets(consistency: common_pb2.Consistency) -> list[tuple[int, int]]:
    return [(p.partition, p.offset) for p in consistency.min_offsets]


def resource_to_pb(spec: ResourceSpec, topic: str, partitions: int) -> catalog_pb2.ResourceDescriptor:
    import orjson

    return catalog_pb2.ResourceDescriptor(
        name=spec.name,
        code=spec.code,
        title=spec.title,
        provider=spec.provider,
        summary=spec.summary,
        key=spec.key,
        fields=[
            catalog_pb2.FieldDescriptor(
                name=f.name,
                type=f.type,
                title=f.title,
                required=f.required,
                sensitive=f.sensitive,
                allowed=f.allowed,
                format=f.format,
                indexed=f.indexed,
            )
            for f in spec.fields
        ],
        sharing_class=_SHARING[spec.sharing_class],
        sharing_methods=spec.sharing_methods,
        conditions=spec.conditions,
        legal_basis=spec.legal_basis,
        open_data=spec.open_data,
        update_frequency=spec.update_frequency,
        published_on=spec.published_on.isoformat(),
        related=spec.related,
        topic=topic,
        partitions=partitions,
        schema_version=spec.schema_version,
        json_schema=orjson.dumps(spec.json_schema()).decode(),
    )
