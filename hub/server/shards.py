"""Forwarding and scatter-gather between the shards of a sharded hub.

A replica started with ``--shard I/N`` holds only its shard's partitions of each resource topic
(:mod:`hub.records.shards`). A call about a key it does not hold is forwarded to a replica of the
owning shard, found in the shard registry (:mod:`hub.cache.shards`); calls that span keys of every
shard (VerifyBatch, lookups by an indexed field, Subscribe) are sent to every shard and the answers
gathered. A forwarded call carries :data:`~hub.headers.FORWARDED_HEADER`: its receiver answers from
its own partitions only, and refuses (UNAVAILABLE) a key it does not hold instead of forwarding
again. A shard with no reachable replica makes the call UNAVAILABLE, never NOT_FOUND.

The caller's department travels in the identity headers. Under mutual TLS the forwarding replica
presents the hub's server certificate (O=hub, OU=replica), and only such a peer is believed about
whom it calls for (:mod:`hub.governance.identity`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from hub.cache.shards import ShardRegistry
from hub.cache.table import Watermark
from hub.client import DEFAULT_OPTIONS, identity_headers
from hub.errors import HubError, InvalidArgument, Unavailable
from hub.governance.identity import current_caller
from hub.headers import FORWARDED_HEADER
from hub.records.shards import WHOLE, ShardAssignment, shard_of
from hub.server.convert import watermark_from_pb, watermark_to_pb
from hub.v1 import common_pb2


class Relayed(HubError):
    """The owning shard's refusal, passed on to the caller with its status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]  # the owner's status, per instance


def relayed(err: aio.AioRpcError) -> HubError:
    """The error to raise for another shard's refusal: the same status and message, and for
    INVALID_ARGUMENT the same field violations."""
    if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
        for key, value in err.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                violations = []
                for detail in status_pb2.Status.FromString(cast(bytes, value)).details:
                    bad = error_details_pb2.BadRequest()
                    if detail.Unpack(bad):
                        violations += [(v.field, v.description) for v in bad.field_violations]
                return InvalidArgument(err.details() or "", violations=violations)
    return Relayed(err.code(), err.details() or "")


@dataclass(frozen=True)
class Route:
    """Where a call is answered: here (``local``) and/or on the ``remote`` shards."""

    local: bool
    remote: tuple[int, ...]


class ShardRouter:
    """This replica's shard, the registry of the others, and channels to them."""

    def __init__(self, shard: ShardAssignment, registry: ShardRegistry, tls_dir: Path | None, lease_s: float) -> None:
        self.shard = shard
        self.registry = registry
        self.lease_s = lease_s
        self._credentials = None
        if tls_dir is not None:  # the replica's own certificate; any replica's address matches "localhost"
            self._credentials = grpc.ssl_channel_credentials(
                (tls_dir / "ca.crt").read_bytes(),
                (tls_dir / "server.key").read_bytes(),
                (tls_dir / "server.crt").read_bytes(),
            )
        self.address = ""  # this replica's advertised address, once it listens
        self._channels: dict[str, aio.Channel] = {}

    @property
    def sharded(self) -> bool:
        return self.shard != WHOLE

    def replicas(self, index: int) -> list[str]:
        return self.registry.replicas(self.shard.count, self.lease_s).get(index, [])

    def route(self, key: str | None, partitions: int, context: aio.ServicerContext) -> Route:
        """A key's shard (``key``), or every shard (None: an indexed field or a stream)."""
        if not self.sharded:
            return Route(True, ())
        forwarded = is_forwarded(context)
        if key is None:
            others = tuple(i for i in range(self.shard.count) if i != self.shard.index)
            return Route(True, () if forwarded else others)
        owner = self.owner(key, partitions)
        if owner == self.shard.index:
            return Route(True, ())
        if forwarded:
            raise Unavailable(f"shard {self.shard} does not hold this key (shard {owner}/{self.shard.count} does)")
        return Route(False, (owner,))

    def owner(self, key: str, partitions: int) -> int:
        """The shard holding ``key`` of a resource topic with ``partitions`` partitions."""
        return shard_of(key, partitions, self.shard.count)

    def _channel(self, address: str) -> aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            if self._credentials is None:
                channel = aio.insecure_channel(address, options=DEFAULT_OPTIONS)
            else:
                options = (*DEFAULT_OPTIONS, ("grpc.ssl_target_name_override", "localhost"))
                channel = aio.secure_channel(address, self._credentials, options=options)
            self._channels[address] = channel
        return channel

    def metadata(self) -> tuple[tuple[str, str], ...]:
        caller = current_caller.get()
        return (*identity_headers(caller.department, caller.subsystem), (FORWARDED_HEADER, "1"))

    def _unavailable(self, index: int, why: str) -> Unavailable:
        return Unavailable(f"shard {index}/{self.shard.count} is unavailable: {why}; its keys cannot be answered")

    async def call(
        self,
        index: int,
        method: Callable[[aio.Channel], Callable[..., Awaitable]],
        request,
        context: aio.ServicerContext,
    ):
        """``method`` of a replica of shard ``index``: the first that answers; UNAVAILABLE if none does."""
        replicas = self.replicas(index)
        if not replicas:
            raise self._unavailable(index, "no replica is registered")
        problems = []
        for address in replicas:
            try:
                return await method(self._channel(address))(
                    request, metadata=self.metadata(), timeout=context.time_remaining()
                )
            except aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.UNAVAILABLE:
                    raise relayed(err) from None
                problems.append(f"{address}: {err.details()}")
        raise self._unavailable(index, "; ".join(problems))

    def stream(self, index: int, method: Callable[[aio.Channel], Callable], request) -> list:
        """Streaming calls to shard ``index``'s replicas, one per replica, for the caller to try in turn."""
        replicas = self.replicas(index)
        if not replicas:
            raise self._unavailable(index, "no replica is registered")
        return [lambda a=address: method(self._channel(a))(request, metadata=self.metadata()) for address in replicas]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


def is_forwarded(context: aio.ServicerContext) -> bool:
    return any(k == FORWARDED_HEADER for k, _ in context.invocation_metadata() or ())


def merge_watermarks(marks: Sequence[common_pb2.Watermark]) -> common_pb2.Watermark:
    return watermark_to_pb(Watermark.merged([watermark_from_pb(m) for m in marks]))
