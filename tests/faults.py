"""Fault-test helpers: a publisher that keeps going through an outage and remembers exactly what the
hub acknowledged, a loopback TCP proxy that can stall or cut a connection, and waiting on conditions."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator

import grpc
import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hub.kafka.clients import consumer_config
from hub.kafka.directory import DIRECTORY
from hub.v1 import exchange_pb2, exchange_pb2_grpc, verification_pb2, verification_pb2_grpc
from tests.hubtest import CTX, resident

RESOURCE = "population.resident"

OK = grpc.StatusCode.OK.value[0]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Polls ``condition`` until it holds; the timeout only bounds a hang, it is not a wait for time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def health(channel: grpc.Channel, service: str = "") -> str:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    except grpc.RpcError as err:
        return err.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def topic_records(bootstrap: str, topic: str, only: Collection[int] | None = None) -> Iterator[Message]:
    """Every record of ``topic`` (of its partitions in ``only``), from the start to the end of each partition."""
    consumer = Consumer(consumer_config(bootstrap, "test-reader", {"enable.partition.eof": True}))
    try:
        partitions = [
            p for p in consumer.list_topics(topic, timeout=30).topics[topic].partitions if not only or p in only
        ]
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        at_end: set[int] = set()
        while len(at_end) < len(partitions):
            for m in consumer.consume(1000, 1.0):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                    continue
                at_end.discard(m.partition())
                yield m
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str) -> dict[str, bytes]:
    """The topic's state as a plain model: the last value per key, tombstones removing keys."""
    state: dict[str, bytes] = {}
    for m in topic_records(bootstrap, topic):
        if m.value() is None:
            state.pop(m.key().decode(), None)
        else:
            state[m.key().decode()] = m.value()
    return state


def count_by_key(
    bootstrap: str, topic: str, values: dict[str, set[bytes]] | None = None, *, events: bool = False
) -> Counter[str]:
    """How many records each key has in ``topic`` (every record, not the last value per key); the
    distinct values per key go into ``values`` if given. ``events``: of a cases topic's case events,
    without its directory's announcements (hub.kafka.directory)."""
    counts: Counter[str] = Counter()
    for m in topic_records(bootstrap, topic):
        if events and m.partition() == DIRECTORY:
            continue
        counts[m.key().decode()] += 1
        if values is not None:
            values.setdefault(m.key().decode(), set()).add(m.value())
    return counts


def verify(channel: grpc.Channel, key: str) -> verification_pb2.VerifyResponse:
    stub = verification_pb2_grpc.VerificationStub(channel)
    return stub.Verify(verification_pb2.VerifyRequest(resource=RESOURCE, key=key, context=CTX), timeout=10)


def refused_with_retry_advice(channel: grpc.Channel, key: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        verify(channel, key)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value
    assert "Kafka" in caught.value.details()
    assert int(dict(caught.value.trailing_metadata())["retry-after-ms"]) > 0


class PublishStream:
    """Publishes batches of new residents on a thread, retrying each batch as a careful connector
    would (UNAVAILABLE, a deadline, or records the hub reports unacknowledged) until every record of
    it is acknowledged. ``acknowledged`` holds the keys the hub said Kafka has, ``answers`` counts
    the calls answered OK, ``refusals`` the (status, retry-after-ms) of the refused ones."""

    def __init__(self, channel: grpc.Channel, ids: list[str], batch: int = 50, resource: str = "population.resident"):
        self._stub = exchange_pb2_grpc.ExchangeStub(channel)
        self._batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
        self._resource = resource
        self.acknowledged: set[str] = set()
        self.answers = 0
        self.refusals: list[tuple[str, str]] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for batch in self._batches:
                pending = list(batch)
                while pending:
                    pending = self._publish(pending)
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def _publish(self, keys: list[str]) -> list[str]:
        request = exchange_pb2.PublishRequest(
            resource=self._resource, records=[exchange_pb2.Record(json=orjson.dumps(resident(k))) for k in keys]
        )
        try:
            response = self._stub.Publish(request, timeout=60)
        except grpc.RpcError as err:
            if err.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            retry = dict(err.trailing_metadata() or ()).get("retry-after-ms", "")
            self.refusals.append((err.code().name, retry))
            time.sleep(int(retry or 200) / 1000)  # as told by the hub
            return keys
        self.answers += 1
        self.acknowledged.update(r.key for r in response.results if r.code == OK)
        return [r.key for r in response.results if r.code != OK]

    def join(self, timeout: float = 300.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the publish stream did not finish"
        if self.error is not None:
            raise self.error


class TcpProxy:
    """A loopback proxy in front of one TCP service, on its own event loop thread. ``stall()`` stops
    forwarding (connections stay open, bytes wait), ``cut()`` closes every connection and refuses new
    ones, ``heal()`` forwards again. The broker's advertised address is the proxy's, so every client
    connection of the hub passes through it."""

    def __init__(self, target_host: str, target_port: int, listen_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = listen_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._flowing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._refusing = False
        self._server = self._call(self._start())

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _start(self) -> asyncio.AbstractServer:
        self._flowing = asyncio.Event()
        self._flowing.set()
        server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        return server

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        while data := await reader.read(65536):
            await self._flowing.wait()
            writer.write(data)
            await writer.drain()
        writer.close()

    def stall(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def cut(self) -> None:
        async def cut() -> None:
            self._refusing = True
            for w in list(self._writers):
                w.transport.abort()

        self._call(cut())

    def heal(self) -> None:
        async def heal() -> None:
            self._refusing = False
            self._flowing.set()

        self._call(heal())

    def close(self) -> None:
        async def close() -> None:
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()

        self._call(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
