"""A call's audit entries written as a group (``AuditLog.writing``): the call learns of every message
that carried one of them, not only the last. An entry no call waits for (``AuditLog.record``) shares
the next group's message rather than making one of its own."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from confluent_kafka import KafkaError
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.errors import Unavailable
from hub.governance import audit as audit_module
from hub.governance.audit import AuditEvent, AuditLog


def _entry(i: int) -> AuditEvent:
    return AuditEvent("dept", "", "case.evidence", "population.resident", (f"subject-{i}",), (), "", f"C-{i}", "OK", 1)


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    """A log whose messages go nowhere: each batch's outcome is the next of ``log.outcomes`` (then written)."""
    monkeypatch.setattr(audit_module, "MESSAGE_BYTES", 1000)  # two entries a message
    audit = AuditLog(
        {"bootstrap.servers": "127.0.0.1:9", "log_level": 0}, "audit", ed25519.Ed25519PrivateKey.generate(), b"k" * 32
    )
    outcomes: list[KafkaError | None] = []
    messages: list[list[dict]] = []

    def write(value: bytes) -> KafkaError | None:
        messages.append(orjson.loads(value)["entries"])
        return outcomes.pop(0) if outcomes else None

    monkeypatch.setattr(audit, "_write", write)
    audit.outcomes = outcomes  # type: ignore[attr-defined]
    audit.messages = messages  # type: ignore[attr-defined]
    return audit


def test_a_group_fails_if_a_message_before_its_last_is_refused(log: AuditLog) -> None:
    async def run() -> None:
        log.outcomes.append(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))  # type: ignore[attr-defined]
        group = log.writing([_entry(i) for i in range(10)])  # five messages, the first refused
        log._drain()
        with pytest.raises(Unavailable, match="could not be written"):
            await group
        later = log.writing([_entry(i) for i in range(10)])
        log._drain()
        await later

    asyncio.run(run())


def test_an_entry_that_fills_a_message_is_settled_by_that_message(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_module, "MESSAGE_BYTES", 400)  # each entry fills a message by itself

    async def run() -> None:
        for entry in range(3):
            done = log.writing([_entry(entry)])
            log._drain()
            await asyncio.wait_for(done, 10)  # not left for a next message that may never come
        assert log.writing([]).done()

    asyncio.run(run())


def _access_messages(log: AuditLog) -> list[list[str]]:
    """The case numbers of each message written so far that carried access entries (not checkpoints)."""
    written = ([e["case_number"] for e in m if e["kind"] == "access"] for m in log.messages)  # type: ignore[attr-defined]
    return [numbers for numbers in written if numbers]


def test_an_entry_no_call_waits_for_goes_with_the_next_awaited_ones(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_module, "RECORD_LINGER_S", 3600.0)  # nothing but the awaited entry moves it

    async def run() -> None:
        log.start()
        try:
            log.record(_entry(1))  # a call's own entry, its accesses already on the trail
            await asyncio.wait_for(log.writing([_entry(2)]), 60)
        finally:
            log.stop()

    asyncio.run(run())
    assert _access_messages(log) == [["C-1", "C-2"]]  # one message, in the order they were queued


def test_an_entry_no_call_waits_for_is_written_without_one(log: AuditLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_module, "RECORD_LINGER_S", 0.01)
    log.start()
    try:
        log.record(_entry(1))
        deadline = time.monotonic() + 60  # a guard only: it goes once it has waited the linger
        while not _access_messages(log) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _access_messages(log) == [["C-1"]]
    finally:
        log.stop()
