"""The audit trail: every access, publish and administrative action, tamper-evident.

Each hub process writes its own chain to the audit topic (keyed by chain id, so a chain stays in
one partition and in order). Entry n carries ``seq`` n and ``prev``, the hash of entry n-1; its
``hash`` is SHA-256 over ``prev`` and the entry's canonical JSON. Every ``checkpoint_every``
entries, every ``checkpoint_interval_s`` and when the process stops cleanly, a checkpoint entry
signs (Ed25519) the chain id, seq and hash of the latest entry. ``hub audit verify`` recomputes
the chains and checks the signatures, so an edited, removed or reordered entry is detected.
What cannot be detected: the removal of the newest entries after the last checkpoint of a chain
that did not stop cleanly (at most ``checkpoint_interval_s`` of entries).

Subjects (resident IDs, credit codes) are never stored: only a keyed digest (BLAKE2b with the hub's
audit subject key), so the citizen's question can be answered from their key and nothing else.

Entries drained together are written as one Kafka message ``{"entries": [...]}`` keyed by the
chain; the chain itself is per entry.

An answered access must be audited, so the RPC layer releases an answer only once its entry is
acknowledged by Kafka (:meth:`AuditLog.write`). That costs one produce round trip per call, not one
produce per call: a writer thread wakes on the first queued entry a call waits for, takes every entry
queued by then (group commit), computes digests and hashes and produces them as one message; entries
queued while that message is in flight go into the next one. It settles the waiting calls once Kafka
answers.
:meth:`AuditLog.record` enqueues without waiting, for entries made inside a call that itself waits
and for a call's own entry once its accesses are on the trail; such an entry wakes no one, and rides
with the next awaited ones (or goes after ``RECORD_LINGER_S``);
:meth:`AuditLog.writing` enqueues several and hands back the wait, for a call that waits on Kafka for
something else meanwhile (a case's evidence checks, acknowledged while its event is).
When the backlog is too long, the hub refuses new calls with RESOURCE_EXHAUSTED rather than leave
them unaudited.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple

import orjson
from confluent_kafka import KafkaError, Producer
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.errors import Unavailable
from hub.kafka.clients import renewal_errors
from hub.records.codec import clip

log = logging.getLogger(__name__)

# Subject digests per entry (36 bytes each in JSON), and the size at which a batch becomes a message.
SUBJECTS_PER_ENTRY = 5_000
MAX_TEXT = 256  # a caller's junk (a megabyte "case number") is audited clipped, so an entry always fits a message
MESSAGE_BYTES = 512 * 1024
# How long an entry no call waits for (AuditLog.record: a call's own entry once its accesses are on the
# trail) waits for the next call's awaited entries to share their message. A case's call then makes one
# message, not two: each message is a produce request for the broker and a record batch it keeps.
RECORD_LINGER_S = 0.05


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else clip(text, MAX_TEXT)  # six an entry: the common case inline


def subject_digest(subject_key: bytes, subject: str) -> str:
    """Keyed BLAKE2b-128 (a MAC, and several times cheaper than HMAC-SHA256), as 32 hex characters."""
    return hashlib.blake2b(subject.encode(), digest_size=16, key=subject_key[:64]).hexdigest()


def entry_hash(prev: str, body: dict) -> str:
    return _hash_of(prev, orjson.dumps(body, option=orjson.OPT_SORT_KEYS))


def _hash_of(prev: str, canonical: bytes) -> str:
    return hashlib.sha256(prev.encode() + canonical).hexdigest()


def checkpoint_message(chain: str, seq: int, digest: str) -> bytes:
    return f"{chain}:{seq}:{digest}".encode()


class AuditEvent(NamedTuple):  # one per evidence check: 4x cheaper to make than a frozen dataclass
    """One auditable event, as handed over by the RPC layer."""

    caller: str
    subsystem: str
    action: str
    resource: str
    subjects: Sequence[str]
    fields: Sequence[str]
    purpose: str
    case_number: str
    outcome: str
    latency_us: int
    detail: str = ""
    at_ms: int = 0


class AuditLog:
    def __init__(
        self,
        producer_config: dict,
        topic: str,
        signing_key: ed25519.Ed25519PrivateKey,
        subject_key: bytes,
        *,
        checkpoint_every: int = 1000,
        checkpoint_interval_s: float = 5.0,
        chain: str | None = None,
    ) -> None:
        self.topic = topic
        self.chain = chain or f"{socket.gethostname()}-{os.getpid()}-{int(time.time() * 1000)}"
        # No linger: callers wait for the acknowledgement, and batching comes from the group commit.
        self._producer = Producer({**producer_config, "linger.ms": 0, "error_cb": self._on_error})
        self._renewed_by = renewal_errors(producer_config)  # the batch then goes again on a fresh one
        self._signing_key = signing_key
        self._keyed = hashlib.blake2b(digest_size=16, key=subject_key[:64])
        self._every = checkpoint_every
        self._interval = checkpoint_interval_s
        # An entry, the call's future if it waits, and whether this entry's acknowledgement settles it.
        self._queue: collections.deque[tuple[AuditEvent, asyncio.Future | None, bool]] = collections.deque()
        self._wake = threading.Event()  # set by entries a call waits for
        self._awaited = False  # whether an entry a call waits for is queued
        self._unawaited_since: float | None = None  # when the oldest queued entry no call waits for came
        self._stop = threading.Event()
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._poller = threading.Thread(target=self._poll, name="audit-delivery", daemon=True)
        self._seq = -1
        self._prev = ""
        self._batch: list[bytes] = []  # each entry's JSON
        self._batch_bytes = 0
        # Calls with entries in ``_batch``: each fails if the batch does; succeeds if it settles with it.
        self._waiting: list[tuple[asyncio.Future, bool]] = []
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self.written = 0
        self.failed = 0
        self._fatal = threading.Event()
        self._retired: list[Producer] = []
        self._config = {**producer_config, "linger.ms": 0}

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def subject_digest(self, subject: str) -> str:
        h = self._keyed.copy()  # copying a keyed state is cheaper than keying a new one
        h.update(subject.encode())
        return h.hexdigest()

    def start(self) -> None:
        self._append({"kind": "genesis", "detail": "chain started"})
        self._flush_batch()
        self._thread.start()
        self._poller.start()

    def record(self, access: AuditEvent) -> None:
        """Enqueues an entry without waiting for it. Must not block. Callers refuse new calls while
        ``backlog`` is too long (see hub.server.interceptors); a call that already happened is always
        recorded. The entry goes with the next entry a call waits for, or once it has waited
        ``RECORD_LINGER_S`` (at most twice that), so that it does not make a message of its own."""
        self._queue.append((access, None, False))
        if self._unawaited_since is None:  # after the append: the writer clears it before it drains
            self._unawaited_since = time.monotonic()

    async def write(self, access: AuditEvent) -> None:
        """Records ``access`` and returns once Kafka acknowledged its entry (and every entry queued
        before it); raises :class:`Unavailable` if the entry could not be written."""
        await self.writing([access])

    def writing(self, accesses: Sequence[AuditEvent]) -> asyncio.Future[None]:
        """:meth:`write` of several entries, started now (the writer wakes once for them all) and
        awaited later: done once Kafka acknowledged every one (they may span several messages);
        Unavailable if any could not be written. Call from the event loop."""
        done = asyncio.get_running_loop().create_future()
        if not accesses:
            done.set_result(None)
            return done
        self._queue.extend((access, done, False) for access in accesses[:-1])
        self._queue.append((accesses[-1], done, True))
        self._awaited = True  # after the append: the writer clears it before it drains
        self._wake.set()
        return done

    def abandon(self) -> None:
        """The broker lost its log (a new cluster): the chain cannot go on there, so :meth:`stop`
        writes no closing checkpoint, and what was in flight or queued fails its callers at once
        instead of waiting out the delivery timeout. Call before :meth:`stop`."""
        self._abandoned = True
        self._stop.set()
        self._wake.set()
        self._producer.purge()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._poller.join(timeout)
        while self._queue:
            self._drain()
        if self._abandoned:
            self._delivered(KafkaError(KafkaError._PURGE_QUEUE), self._waiting)
            self._batch, self._waiting = [], []
        else:
            self._checkpoint(closing=True)
            self._flush_batch()
        left = self._producer.flush(timeout)
        if left:
            log.error("%d audit entries were not acknowledged before shutdown", left)
        for producer in [*self._retired, self._producer]:
            producer.close()

    # -- writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            # Woken by an entry a call waits for; else every RECORD_LINGER_S, for entries no call waits
            # for that have waited that long, and for a checkpoint that is due.
            self._wake.wait(RECORD_LINGER_S)
            self._wake.clear()  # before looking: an entry queued from here on sets it again
            since = self._unawaited_since
            if (
                self._awaited
                or self._checkpoint_due()
                or (since is not None and time.monotonic() - since >= RECORD_LINGER_S)
            ):
                # Before draining: entries queued from here on are looked at in the next turn.
                self._awaited, self._unawaited_since = False, None
                self._drain()
            if self._checkpoint_due():
                self._checkpoint()
                self._flush_batch()

    def _checkpoint_due(self) -> bool:
        return bool(self._since_checkpoint) and (
            self._since_checkpoint >= self._every or time.monotonic() - self._last_checkpoint >= self._interval
        )

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _drain(self) -> None:
        """Writes the entries queued by now, in messages of up to 500 entries (or MESSAGE_BYTES). Entries
        queued meanwhile wait for the writer's next turn: at once if a call waits for one of them."""
        queue = self._queue
        left = len(queue)
        while left:
            take = min(left, 500)
            left -= take
            for _ in range(take):
                a, done, settles = queue.popleft()
                subjects = [self.subject_digest(s) for s in a.subjects]
                # A call about many subjects (a 100,000-key batch) becomes several entries, so that
                # no Kafka message outgrows what a broker accepts (1 MB by default).
                for start in range(0, max(len(subjects), 1), SUBJECTS_PER_ENTRY):
                    part = subjects[start : start + SUBJECTS_PER_ENTRY]
                    self._append(
                        {
                            "kind": "access",
                            "at_ms": a.at_ms or int(time.time() * 1000),
                            "caller": a.caller,
                            "subsystem": a.subsystem,
                            "action": a.action,
                            "resource": _clip(a.resource),
                            "subjects": part,
                            "fields": [_clip(f) for f in a.fields[:100]],
                            "purpose": _clip(a.purpose),
                            "case_number": _clip(a.case_number),
                            "outcome": a.outcome,
                            "latency_us": a.latency_us,
                            "count": len(part),
                            "detail": _clip(a.detail),
                        },
                        size=len(part) * 36,
                    )
                    self._since_checkpoint += 1
                    if self._since_checkpoint >= self._every:
                        self._checkpoint()
                    if done is not None:  # any message with a part fails the call; the last part's settles it
                        self._waiting.append((done, settles and start + SUBJECTS_PER_ENTRY >= len(subjects)))
                    if self._batch_bytes >= MESSAGE_BYTES:
                        self._flush_batch()
            self._flush_batch()

    def _append(self, body: dict, size: int = 0) -> None:
        self._seq += 1
        body["chain"], body["seq"], body["prev"] = self.chain, self._seq, self._prev
        body.setdefault("at_ms", int(time.time() * 1000))
        # Encoded once: the canonical JSON the hash covers is the entry as written, its hash added
        # last (readers parse it; hub.governance.audit_verify hashes the entry without it again).
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        digest = _hash_of(self._prev, canonical)
        self._prev = digest
        self._batch.append(b'%s,"hash":"%s"}' % (canonical[:-1], digest.encode()))
        self._batch_bytes += 400 + size  # a close enough estimate of the entry's JSON
        self.written += 1

    def _flush_batch(self) -> None:
        """Writes the batch and waits for Kafka's answer: one batch in flight at a time keeps the
        chain in order on the topic even when a batch has to go again. Entries queued meanwhile go
        into the next batch (the group commit). A batch Kafka did not take (an outage, a timeout, a
        fenced producer) is sent again, on a fresh producer after a fatal error, until it is written
        or the log stops; only a batch refused as such fails its callers."""
        if not self._batch:
            return
        value = b'{"entries":[%s]}' % b",".join(self._batch)
        waiting = self._waiting
        self._batch = []
        self._batch_bytes = 0
        self._waiting = []
        while True:
            err = self._write(value)
            if err is None or not _worth_again(err) or self._stop.is_set():
                self._delivered(err, waiting)
                return
            log.warning("audit batch not written (%s); sending it again", err)
            if err.fatal() or err.code() in self._renewed_by or self._fatal.is_set():
                self._replace_producer()

    def _write(self, value: bytes) -> KafkaError | None:
        written = threading.Event()
        outcome: list[KafkaError | None] = []

        def delivered(err: KafkaError | None, msg: object) -> None:
            outcome.append(err)
            written.set()

        while True:
            try:
                self._producer.produce(self.topic, value, self.chain.encode(), on_delivery=delivered)
                break
            except BufferError:
                self._producer.poll(0.05)
        while not written.is_set():
            if self._poller.is_alive():  # the delivery thread runs the callback as soon as it comes
                written.wait(0.1)
            else:  # stopping: this thread serves its own callbacks
                self._producer.poll(0.05)
        return outcome[0]

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():  # e.g. fenced after the broker's storage came back: the producer never recovers
            self._fatal.set()

    def _replace_producer(self) -> None:
        """A fresh producer (a new producer id); the old one is closed at stop, not while the delivery
        thread may still poll it."""
        self._fatal.clear()
        old, self._producer = self._producer, Producer({**self._config, "error_cb": self._on_error})
        old.purge()
        self._retired.append(old)
        while len(self._retired) > 1:  # the delivery thread may still be polling the last one only
            self._retired.pop(0).close()
        log.error("audit producer hit a fatal error; replaced it")

    def _checkpoint(self, closing: bool = False) -> None:
        if self._seq < 0:
            return
        signed_seq, signed_hash = self._seq, self._prev
        signature = self._signing_key.sign(checkpoint_message(self.chain, signed_seq, signed_hash))
        self._append(
            {
                "kind": "checkpoint",
                "signed_seq": signed_seq,
                "signed_hash": signed_hash,
                "signature": base64.b64encode(signature).decode(),
                "closing": closing,
            }
        )
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()

    def _delivered(self, err, waiting: list[tuple[asyncio.Future, bool]]) -> None:
        if err is not None:
            self.failed += 1
            log.error("audit entry not written: %s", err)
        # Batches are written in order, so a call's failure arrives before a later batch could settle it.
        futures = [f for f, settles in waiting if settles or err is not None]
        for loop in {f.get_loop() for f in futures}:
            if not loop.is_closed():  # else no call is left waiting
                loop.call_soon_threadsafe(_settle, [f for f in futures if f.get_loop() is loop], err)


# What no later attempt can change: the batch itself, or the hub's rights, are refused.
_PERMANENT = {
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.INVALID_RECORD,
    KafkaError.INVALID_MSG_SIZE,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError._INVALID_ARG,
}


def _worth_again(err: KafkaError) -> bool:
    """Anything but a refusal of the batch itself (too large, invalid, not authorised) may pass later:
    a broker outage, a timeout, a fenced producer, an unknown broker error while its storage is gone."""
    return err.code() not in _PERMANENT


def _settle(waiting: list[asyncio.Future], err) -> None:
    for done in waiting:
        if done.done():  # the call was cancelled meanwhile
            continue
        if err is None:
            done.set_result(None)
        else:
            done.set_exception(Unavailable(f"the call's audit entry could not be written: {err}"))
