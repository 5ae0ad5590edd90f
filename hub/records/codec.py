"""How records are encoded on Kafka, so that any Kafka tool can read them.

- Topic: ``<prefix><resource name>``, one per resource, keyed and compacted.
- Key: the resource key as UTF-8 (e.g. the resident ID).
- Value: the record as a JSON object (orjson), or null (a tombstone) for a
  delete. JSON because kcat, ksqlDB or a Java consumer read it with no hub
  code, the schema is published in the catalogue as JSON Schema, and the cache
  decodes whole batches of it straight into Arrow with ``pyarrow.json``.
- Headers: ``provider``, ``schema_version``, ``trace_id``, ``content-type``.
"""

from __future__ import annotations

import uuid

CONTENT_TYPE = b"application/json"
# Kafka headers, typed as confluent_kafka's produce() takes them (a list is invariant in its items).
Headers = list[tuple[str, str | bytes | None]]


def topic_for(prefix: str, resource: str) -> str:
    return f"{prefix}{resource}"


def new_trace_id() -> str:
    return uuid.uuid4().hex


def headers(provider: str, schema_version: int, trace_id: str) -> Headers:
    return [
        ("provider", provider.encode()),
        ("schema_version", str(schema_version).encode()),
        ("trace_id", trace_id.encode()),
        ("content-type", CONTENT_TYPE),
    ]


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was: what a caller sent may be echoed
    (in an audit entry or an error) without outgrowing the message that carries it."""
    return text if len(text) <= limit else f"{text[:limit]}…({len(text):,} chars)"
