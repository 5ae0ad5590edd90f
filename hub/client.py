"""Channels to a hub, for the hub's own tools (connectors, demo, load tests, CLI) and for tests.

With mutual TLS a caller presents its department certificate; in insecure development mode it
names its department in the ``x-hub-department`` header instead.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.headers import DEPARTMENT_HEADER, SUBSYSTEM_HEADER
from hub.records.partitioner import partition_for

if TYPE_CHECKING:
    from hub.v1 import common_pb2

DEFAULT_OPTIONS = (
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    # A connection of its own per channel: gRPC otherwise shares one between channels to the same
    # address, and hub workers sharing a port (SO_REUSEPORT) are balanced per connection.
    ("grpc.use_local_subchannel_pool", 1),
)


def workers_target(host: str, worker_port: int, workers: int) -> str:
    """The gRPC target naming each worker of ``hub serve --workers N --worker-port P`` at its own port,
    so that a channel's calls take turns over them (:func:`open_channel`'s round_robin). The shared
    port spreads connections, not calls: a client of one connection would keep to one worker. ``host``
    is an IP address (gRPC names several endpoints only as addresses)."""
    ip = ipaddress.ip_address(host)  # ValueError for a name
    if ip.version == 4:
        return "ipv4:" + ",".join(f"{host}:{worker_port + i}" for i in range(workers))
    return "ipv6:" + ",".join(f"[{host}]:{worker_port + i}" for i in range(workers))


def _addresses(target: str) -> tuple[str, list[str]]:
    """The scheme and endpoints of an ``ipv4:``/``ipv6:`` target naming several; [] for any other target."""
    scheme, sep, addresses = target.partition(":")
    parts = addresses.split(",") if scheme in ("ipv4", "ipv6") and sep else []
    return scheme, parts if len(parts) > 1 else []


def endpoints(target: str) -> list[str]:
    """Each address of a target naming several (:func:`workers_target`) as a target of its own; a
    target naming one is returned as it is. To check something on every worker, not on the one a
    channel happens to reach."""
    scheme, parts = _addresses(target)
    return [f"{scheme}:{a}" for a in parts] or [target]


def _host_of(endpoint: str) -> str:
    return endpoint.rpartition(":")[0].strip("[]")


def starting_at(target: str, turn: int) -> str:
    """A target of several addresses (:func:`workers_target`) rotated to begin at address ``turn`` (mod
    their number). With ``lb_policy="pick_first"`` such a channel keeps to that worker, and to the next
    only while it is down: clients given turns in order are spread evenly, each call on a worker that
    has only its share in flight (round_robin spreads calls, but their overlap at random). Any other
    target is returned as it is."""
    scheme, parts = _addresses(target)
    if not parts:
        return target
    turn %= len(parts)
    return scheme + ":" + ",".join(parts[turn:] + parts[:turn])


class _Headers(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._metadata = tuple(metadata)

    def _details(self, details):
        return details._replace(metadata=tuple(details.metadata or ()) + self._metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)


def identity_headers(department: str, subsystem: str = "") -> list[tuple[str, str]]:
    headers = [(DEPARTMENT_HEADER, department)]
    if subsystem:
        headers.append((SUBSYSTEM_HEADER, subsystem))
    return headers


def credentials(ca: Path, cert: Path, key: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(ca.read_bytes(), key.read_bytes(), cert.read_bytes())


def open_channel(
    address: str,
    *,
    department: str | None = None,
    subsystem: str = "",
    tls: tuple[Path, Path, Path] | None = None,
    lb_policy: str | None = None,
) -> grpc.Channel:
    """A blocking channel. ``tls`` is (CA certificate, department certificate, key). ``lb_policy`` is
    gRPC's: by default round_robin for an ``address`` naming several endpoints (:func:`workers_target`:
    each call to the next), pick_first for any other (gRPC's own default: one connection, so a name
    that resolves to several replicas keeps to one); pick_first over several keeps to the first that
    answers (:func:`starting_at`)."""
    _, several = _addresses(address)
    options: tuple[tuple[str, str | int], ...] = (
        *DEFAULT_OPTIONS,
        ("grpc.lb_policy_name", lb_policy or ("round_robin" if several else "pick_first")),
    )
    if tls is not None:
        if several:  # gRPC would check the server's certificate against the whole list
            options = (*options, ("grpc.ssl_target_name_override", _host_of(several[0])))
        return grpc.secure_channel(address, credentials(*tls), options=options)
    channel = grpc.insecure_channel(address, options=options)
    if department:
        channel = grpc.intercept_channel(channel, _Headers(identity_headers(department, subsystem)))
    return channel


class _AioHeaders:
    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._metadata = tuple(metadata)

    def _details(self, details):
        return details._replace(metadata=aio.Metadata(*(tuple(details.metadata or ()) + self._metadata)))


# grpc.aio files each interceptor under one kind only, so unary and streaming calls need one each.
class _AioUnaryHeaders(_AioHeaders, aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(self._details(details), request)


class _AioStreamHeaders(_AioHeaders, aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(self._details(details), request)


def open_aio_channel(
    address: str, *, department: str | None = None, subsystem: str = "", tls: tuple[Path, Path, Path] | None = None
) -> aio.Channel:
    """An asyncio channel, as :func:`open_channel`."""
    if tls is not None:
        return aio.secure_channel(address, credentials(*tls), options=DEFAULT_OPTIONS)
    headers = identity_headers(department, subsystem) if department else None
    interceptors: list[aio.ClientInterceptor] | None = (
        [_AioUnaryHeaders(headers), _AioStreamHeaders(headers)] if headers else None
    )
    return aio.insecure_channel(address, options=DEFAULT_OPTIONS, interceptors=interceptors)


def wait_serving(channel: grpc.Channel, timeout: float) -> None:
    """Until the hub's health service reports SERVING (its cache caught up), or TimeoutError."""
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        try:
            # types-grpcio-health-checking's HealthStub declares no RPC methods
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)  # type: ignore[attr-defined]
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the hub did not report SERVING")
        time.sleep(0.2)


def ensure_grants(
    address: str,
    wanted: Sequence[tuple[str, str, Sequence[common_pb2.Purpose]]],
    tls_for: Callable[[str], tuple[Path, Path, Path]] | None = None,
) -> None:
    """Each (consumer, resource, purposes) gets a grant: requested by the consumer and approved by
    the resource's provider, unless one already covers it. Idempotent, so every Locust process may
    call it at start. For load tests and benchmarks; a real department files its request and waits."""
    from hub.catalogue.model import load_builtin
    from hub.v1 import governance_pb2, governance_pb2_grpc

    catalogue = load_builtin()

    def covered(stub: governance_pb2_grpc.GovernanceStub, consumer: str, resource: str, purposes: Sequence) -> bool:
        grants = stub.ListGrants(governance_pb2.ListGrantsRequest(resource=resource), timeout=30).grants
        return any(g.consumer == consumer and set(purposes) <= set(g.purposes) for g in grants)

    for consumer, resource, purposes in wanted:
        tls = tls_for(consumer) if tls_for else None
        as_consumer = governance_pb2_grpc.GovernanceStub(open_channel(address, department=consumer, tls=tls))
        if covered(as_consumer, consumer, resource, purposes):
            continue
        filed = as_consumer.RequestAccess(
            governance_pb2.RequestAccessRequest(resource=resource, purposes=purposes, legal_basis="load test"),
            timeout=30,
        ).request
        provider = catalogue.resource(resource).provider
        as_provider = governance_pb2_grpc.GovernanceStub(
            open_channel(address, department=provider, tls=tls_for(provider) if tls_for else None)
        )
        deadline = time.monotonic() + 30
        while True:  # the provider's connection may reach a replica that has not read the request yet
            try:
                as_provider.DecideAccess(
                    governance_pb2.DecideAccessRequest(request_id=filed.id, decision=governance_pb2.DECISION_APPROVE),
                    timeout=30,
                )
                break
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # Every worker of a target naming several has applied the grant before the load begins.
        for endpoint in endpoints(address):
            on_worker = governance_pb2_grpc.GovernanceStub(open_channel(endpoint, department=consumer, tls=tls))
            while not covered(on_worker, consumer, resource, purposes):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{endpoint} did not show the grant of {resource} to {consumer} within 30 s")
                time.sleep(0.05)


# -- receipts: documents to file, and checking them offline ---------------------------------------


def receipt_document(receipt) -> dict:
    """The document to file for a Verify's or a case's receipt (a hub.v1.Receipt)."""
    from hub.proofs.receipt_format import b64u

    return {"receipt": receipt.jws, "salt": b64u(receipt.salt)}


def batch_receipt_documents(request, response) -> list[dict]:
    """One document per key of a VerifyBatch asked with ``receipt``: the batch's signature, the key's
    leaf and its inclusion proof, so a key's receipt can be shown without the rest of the batch."""
    import orjson

    from hub.proofs import merkle
    from hub.proofs.receipt_format import SALT_BYTES, b64u, unb64u, values_digest

    receipt = response.receipt
    statement = orjson.loads(unb64u(receipt.jws.split(".")[1]))
    n = len(request.keys)
    levels = merkle.unpack(receipt.tree, n)
    per_key = [i for i, c in enumerate(statement["claims"]) if c["per_key"]]
    documents = []
    for i in range(n):
        salt = receipt.key_salts[i * SALT_BYTES : (i + 1) * SALT_BYTES]
        leaf = {
            "index": i,
            "salt": b64u(salt),
            "found": response.found[i],
            "match": response.match[i],
            "claims": [c.matched[i] for c in response.claims],
            "values": [b64u(values_digest(salt, (request.claims[j].values[i],))) for j in per_key],
        }
        proof = [b64u(p) for p in merkle.inclusion_proof(levels, i)]
        documents.append({"receipt": receipt.jws, "salt": b64u(receipt.salt), "leaf": leaf, "proof": proof})
    return documents


def verify_receipt(
    document: dict, jwks: dict, subject: str | None = None, claims: dict[str, list[str]] | None = None, **roles: str
):
    """Checks a receipt document offline against the hub's JWKS, and the subject's ID and the claimed
    values the caller holds (``roles`` for a case's other subjects, e.g. ``spouse="5106..."``).
    Returns a :class:`hub.proofs.receipt_check.ReceiptCheck`: ``ok``, ``problems``, ``statement``."""
    from hub.proofs.receipt_check import APPLICANT, check_receipt

    subjects = {**({APPLICANT: subject} if subject else {}), **roles}
    return check_receipt(document, jwks, subjects, claims)


# -- sharded hubs: sending each key to a replica that holds it -------------------------------------


class ShardRoutes:
    """Routes keys to the shard that holds them, from a hub's ``Catalog.Shards`` answer.

    A key's partition is Kafka's murmur2 of the key modulo the topic's partition count (as the hub's
    producer places it); the shard map says which shard holds that partition and which replicas
    serve it. Calls for a key go straight there, saving the forwarding hop; any replica would also
    forward. Re-read the map (:meth:`refresh`) when a replica is unreachable or after a reshard.
    """

    def __init__(self, channel: grpc.Channel, open_replica: Callable[[str], grpc.Channel]) -> None:
        self._catalog_channel = channel
        self._open = open_replica
        self._channels: dict[str, grpc.Channel] = {}
        self.refresh()

    def refresh(self) -> None:
        from hub.v1 import catalog_pb2, catalog_pb2_grpc

        shards = catalog_pb2_grpc.CatalogStub(self._catalog_channel).Shards(catalog_pb2.ShardsRequest(), timeout=30)
        self.count = shards.count
        self._owner: dict[str, tuple[int, list[int]]] = {}  # resource → (partitions, shard of each)
        self._replicas = {s.index: list(s.replicas) for s in shards.shards}
        for s in shards.shards:
            for r in s.partitions:
                owners = self._owner.setdefault(r.resource, (r.topic_partitions, [-1] * r.topic_partitions))[1]
                for p in r.partitions:
                    owners[p] = s.index

    def shard_of(self, resource: str, key: str) -> int:
        partitions, owners = self._owner[resource]
        return owners[partition_for(key, partitions)]

    def channel_address(self, index: int) -> str:
        """The address calls for shard ``index`` go to (its first listed replica)."""
        replicas = self._replicas.get(index) or []
        if not replicas:
            raise LookupError(f"shard {index} of {self.count} has no replica registered")
        return replicas[0]

    def channel(self, resource: str, key: str) -> grpc.Channel:
        """A channel to a replica holding ``key`` of ``resource``."""
        address = self.channel_address(self.shard_of(resource, key))
        if address not in self._channels:
            self._channels[address] = self._open(address)
        return self._channels[address]

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
