"""Distributing a certificate revocation list: to every replica through the governance topic, and
to a hub reading a PKI directory by watching its CRL file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
from confluent_kafka import Producer

from hub.kafka.clients import producer_config


def publish_crl(bootstrap: str, topic_prefix: str, crl_pem: bytes) -> None:
    producer = Producer(producer_config(bootstrap))
    producer.produce(f"{topic_prefix}_governance", orjson.dumps({"pem": crl_pem.decode()}), b"crl")
    unacknowledged = producer.flush(30)
    producer.close()
    if unacknowledged:
        raise RuntimeError("the CRL was not acknowledged by Kafka")


async def watch_crl(path: Path, load: Callable[[bytes], object], every_s: float = 1.0) -> None:
    """Revocation takes effect without a restart: ``load`` gets the CRL file again whenever it changes."""
    seen = path.stat().st_mtime_ns if path.exists() else 0
    while True:
        await asyncio.sleep(every_s)
        if path.exists() and path.stat().st_mtime_ns != seen:
            seen = path.stat().st_mtime_ns
            load(path.read_bytes())
