"""A call's audit entries written as a group (``AuditLog.writing``): the call learns of every message
that carried one of them, not only the last."""

from __future__ import annotations

import asyncio

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
    monkeypatch.setattr(audit, "_write", lambda value: outcomes.pop(0) if outcomes else None)
    audit.outcomes = outcomes  # type: ignore[attr-defined]
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
