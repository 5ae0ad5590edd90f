"""Distributing a certificate revocation list to every replica through the governance topic."""

from __future__ import annotations

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
