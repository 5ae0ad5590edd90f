"""Verifies audit chains: recomputes every hash link and checks every signed checkpoint.

Detects an entry whose content was edited (its hash no longer matches), an entry removed (a gap
in ``seq``), entries reordered or replayed (``seq`` going back), a broken link (``prev`` not the
hash of the entry before) and a forged or invalid checkpoint signature.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.governance.audit import checkpoint_message, entry_hash
from hub.kafka.clients import consumer_config


@dataclass(frozen=True)
class Problem:
    chain: str
    seq: int
    kind: str  # altered, missing, reordered, broken_link, bad_signature
    message: str


@dataclass
class _Chain:
    expected: int = 0
    prev: str = ""
    hashes: dict[int, str] = field(default_factory=dict)
    entries: int = 0
    checkpoints: int = 0
    duplicates: int = 0  # batches the writer sent again after a broker failure (at least once)


@dataclass
class Report:
    chains: dict[str, _Chain]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        entries = sum(c.entries for c in self.chains.values())
        checkpoints = sum(c.checkpoints for c in self.chains.values())
        head = f"{len(self.chains)} chains, {entries} entries, {checkpoints} signed checkpoints"
        if self.ok:
            return f"OK: {head}; every hash link and signature verified"
        lines = [f"TAMPERED: {head}; {len(self.problems)} problems"]
        lines += [f"  chain {p.chain} seq {p.seq}: {p.kind}: {p.message}" for p in self.problems]
        return "\n".join(lines)


def verify_entries(entries: Iterable[dict], public_key: ed25519.Ed25519PublicKey) -> Report:
    chains: dict[str, _Chain] = {}
    problems: list[Problem] = []
    for entry in entries:
        name, seq = entry.get("chain", "?"), int(entry.get("seq", -1))
        chain = chains.setdefault(name, _Chain())
        chain.entries += 1
        body = {k: v for k, v in entry.items() if k != "hash"}
        if entry_hash(str(entry.get("prev", "")), body) != entry.get("hash"):
            problems.append(Problem(name, seq, "altered", "the entry's hash does not match its content"))
        if seq < chain.expected and chain.hashes.get(seq) == entry.get("hash"):
            chain.duplicates += 1  # the writer sent a batch again after a broker failure: at least once
            continue
        if seq < chain.expected:
            problems.append(
                Problem(
                    name, seq, "reordered", f"seq {seq} appears after seq {chain.expected - 1}: reordered or replayed"
                )
            )
        else:
            if seq > chain.expected:
                problems.append(Problem(name, seq, "missing", f"entries {chain.expected}..{seq - 1} are missing"))
            elif entry.get("prev") != chain.prev:
                problems.append(Problem(name, seq, "broken_link", "prev is not the hash of the entry before"))
            chain.expected = seq + 1
        chain.prev = str(entry.get("hash", ""))
        chain.hashes[seq] = chain.prev
        if entry.get("kind") == "checkpoint":
            chain.checkpoints += 1
            signed_seq, signed_hash = int(entry.get("signed_seq", -1)), str(entry.get("signed_hash", ""))
            try:
                public_key.verify(
                    base64.b64decode(entry.get("signature", "")), checkpoint_message(name, signed_seq, signed_hash)
                )
            except (InvalidSignature, ValueError):
                problems.append(Problem(name, seq, "bad_signature", "the checkpoint's signature is not valid"))
            else:
                if chain.hashes.get(signed_seq, signed_hash) != signed_hash:
                    problems.append(
                        Problem(name, signed_seq, "altered", f"differs from what checkpoint seq {seq} signed")
                    )
    return Report(chains, problems)


def read_topic(bootstrap: str, topic: str, consumer_extra: dict | None = None, timeout: float = 60.0) -> list[dict]:
    """Every entry of the audit topic (messages hold batches of entries), partition by partition in order."""
    consumer = Consumer(
        consumer_config(bootstrap, "hub-audit-verify", {"enable.partition.eof": True, **(consumer_extra or {})})
    )
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        by_partition: dict[int, list[dict]] = {p: [] for p in partitions}
        done: set[int] = set()
        while len(done) < len(partitions):
            for m in consumer.consume(5000, 1.0):
                partition = cast(int, m.partition())  # set on consumed messages and partition EOFs
                if err := m.error():
                    if err.code() == KafkaError._PARTITION_EOF:
                        done.add(partition)
                    continue
                done.discard(partition)
                by_partition[partition].extend(orjson.loads(cast(bytes, m.value()))["entries"])
        return [e for p in sorted(by_partition) for e in by_partition[p]]
    finally:
        consumer.close()
