"""Bad input on the wire: every RPC of every service, called through real gRPC on a running hub with
hypothesis-generated requests (fields random or missing, huge strings and repeated fields, enum
numbers no one defined, invalid UTF-8 and deeply nested JSON in ``bytes`` fields), and requests at
and over the message size limit. Each call has a deadline; each must end with a clear status: never
INTERNAL or UNKNOWN, never stuck, never an empty message. Repeatable: derandomized."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import grpc
import orjson
import pytest
from google.protobuf import descriptor, message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.datagen.city import credit_codes, resident_ids
from hub.server.app import MAX_MESSAGE, SERVICES
from hub.v1 import exchange_pb2
from tests.hubtest import RunningHub, resident

RIDS = resident_ids(51, 5)
CODES = credit_codes(51, 3)
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
FD = descriptor.FieldDescriptor
EXAMPLES = 10
RESOURCES = st.sampled_from(["population.resident", "market.entity", "credit.list_entry", "approval.licence"])

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
JSON_BYTES = st.one_of(
    st.builds(
        lambda rid, over: orjson.dumps(resident(rid, **over)),
        st.sampled_from(RIDS),
        st.dictionaries(
            st.sampled_from(["name", "gender", "birth_date", "status", "district_code", "extra"]),
            _json_values,
            max_size=3,
        ),
    ),
    _json_values.map(orjson.dumps),
    st.binary(max_size=64),
    st.sampled_from([b"\xff\xfe\xfd", b'{"name": "\xc3\x28"}', b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000, b""]),
    st.integers(1, 5).map(lambda n: orjson.dumps({"resident_id": RIDS[0], "name": "张" * (n * 200_000)})),
)
TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["population.resident", "market.entity", "credit.list_entry", "name", "status", "", " "]),
    st.sampled_from(RIDS + CODES),
    st.integers(1, 3).map(lambda n: "x" * (n * 300_000)),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=5).map(lambda t: t * 1000),
)


def _strategy(d: descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[message.Message]:
    cls: Callable[..., message.Message] = _message_class(d)
    fields = [f for f in d.fields if not (f.message_type and depth >= 3)]

    @st.composite
    def build(draw: st.DrawFn) -> message.Message:
        msg = cls()
        for f in fields:
            if not draw(st.booleans()):  # a missing field
                continue
            value = _field_value(f, depth)
            if f.message_type is not None and f.message_type.GetOptions().map_entry:
                kf, vf = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
                target = getattr(msg, f.name)
                for k, v in draw(st.lists(st.tuples(_field_value(kf, depth), _field_value(vf, depth)), max_size=3)):
                    if vf.message_type is not None:
                        target[k].CopyFrom(v)
                    else:
                        target[k] = v
                continue
            if f.is_repeated:
                if f.message_type is None and draw(st.booleans()):  # many: 5,000 copies of one short value
                    getattr(msg, f.name).extend([draw(_short_value(f))] * 5000)
                else:
                    getattr(msg, f.name).extend(draw(st.lists(value, max_size=3)))
            elif f.message_type is not None:
                getattr(msg, f.name).CopyFrom(draw(value))
            else:
                setattr(msg, f.name, draw(value))
        return msg

    return build()


def _field_value(f: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy:
    if f.message_type is not None:
        return st.deferred(lambda: _strategy(f.message_type, depth + 1))
    t = f.type
    if t == FD.TYPE_STRING and f.name == "resource":  # mostly a real one, or nothing gets past the first check
        return st.one_of(RESOURCES, RESOURCES, TEXT)
    if t == FD.TYPE_STRING:
        return TEXT
    if t == FD.TYPE_BYTES:
        return JSON_BYTES
    if t == FD.TYPE_BOOL:
        return st.booleans()
    if t == FD.TYPE_ENUM:
        return st.sampled_from([v.number for v in f.enum_type.values] + [999, -1])
    if t in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if t == FD.TYPE_FLOAT else 64)
    unsigned = t in (FD.TYPE_UINT32, FD.TYPE_UINT64, FD.TYPE_FIXED32, FD.TYPE_FIXED64)
    bits = 32 if t in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32, FD.TYPE_UINT32, FD.TYPE_FIXED32) else 64
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return st.one_of(st.integers(low, high), st.sampled_from([low, 0, 1, high]))


def _short_value(f: descriptor.FieldDescriptor) -> st.SearchStrategy:
    if f.type == FD.TYPE_STRING:
        return st.sampled_from([*RIDS, "x", ""])
    if f.type == FD.TYPE_BYTES:
        return st.just(b"{}")
    return _field_value(f, 0)


def _message_class(d: descriptor.Descriptor) -> Callable[..., message.Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(d)


def _methods() -> list[tuple[str, descriptor.MethodDescriptor]]:
    return [
        (f"/{service.full_name}/{m.name}", m)
        for name, module in SERVICES.items()
        for service in [module.DESCRIPTOR.services_by_name[name.rsplit(".", 1)[1]]]
        for m in service.methods
    ]


def _call(
    channel: grpc.Channel, path: str, m: descriptor.MethodDescriptor, request: message.Message
) -> grpc.StatusCode:
    response_class = _message_class(m.output_type)
    serialize, parse = type(request).SerializeToString, response_class.FromString
    try:
        if m.server_streaming:
            call = channel.unary_stream(path, request_serializer=serialize, response_deserializer=parse)(
                request, timeout=3
            )
            next(iter(call), None)  # a valid subscription may wait for changes: its first answer is enough
            call.cancel()
            return grpc.StatusCode.OK
        channel.unary_unary(path, request_serializer=serialize, response_deserializer=parse)(request, timeout=20)
        return grpc.StatusCode.OK
    except grpc.RpcError as err:
        code = err.code()
        assert code not in NEVER, f"{path}: {code.name}: {err.details()}"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            assert m.server_streaming, f"{path} was stuck: no answer within its deadline"
        elif code != grpc.StatusCode.CANCELLED:
            assert err.details(), f"{path}: {code.name} without a message"
            # gRPC's own limits (a status too big for its headers) are not a clear answer from the hub
            assert "metadata" not in err.details() and "larger than max" not in err.details(), err.details()
        return code


def _fuzz(channel: grpc.Channel, path: str, m: descriptor.MethodDescriptor) -> Counter[str]:
    codes: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(_strategy(m.input_type))
    def one(request: message.Message) -> None:
        codes[_call(channel, path, m, request).name] += 1

    one()
    return codes


@pytest.mark.parametrize("department", ["public_security", "human_resources"])
def test_every_rpc_answers_random_requests_with_a_clear_status(hub: RunningHub, department: str) -> None:
    hub.publish("population.resident", [resident(r) for r in RIDS])
    channel = hub.client(department).channel
    tried = {path: _fuzz(channel, path, m) for path, m in _methods()}
    for path, codes in tried.items():
        print(f"{department} {path}: {sum(codes.values())} cases, {dict(codes)}")
    assert set(tried) == {path for path, _ in _methods()} and all(sum(c.values()) > 0 for c in tried.values())


def test_requests_at_and_over_the_size_limit(hub: RunningHub) -> None:
    def publish(size: int) -> grpc.StatusCode:
        request = exchange_pb2.PublishRequest(resource="population.resident", records=[exchange_pb2.Record()])
        length = size
        while (missing := size - request.ByteSize()) != 0:  # length prefixes grow with the value
            length += missing
            request.records[0].json = orjson.dumps(resident(RIDS[0], name="x" * length))
        try:
            hub.exchange.Publish(request, timeout=60)
        except grpc.RpcError as err:
            assert err.code() not in NEVER and err.details(), err
            return err.code()
        return grpc.StatusCode.OK

    at_limit, over = publish(MAX_MESSAGE), publish(MAX_MESSAGE + 1)
    print(f"Publish of {MAX_MESSAGE} bytes: {at_limit.name}; of {MAX_MESSAGE + 1} bytes: {over.name}")
    assert over == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert at_limit in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)
