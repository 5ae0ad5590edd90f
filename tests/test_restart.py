"""A restarted hub rebuilds its cache from the topics: it holds exactly what Kafka holds."""

from __future__ import annotations

from pathlib import Path

import orjson

from hub.datagen.city import resident_ids
from tests.faults import read_topic
from tests.hubtest import resident, running_hub


def test_restart_rebuilds_cache_from_kafka(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    ids = resident_ids(7, 300)
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path) as hub:
        hub.publish("population.resident", [resident(r) for r in ids])
        hub.publish("population.resident", [resident(r, status="moved_out") for r in ids[:50]])
        hub.publish("population.resident", [(r, None) for r in ids[250:]])
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path) as hub:
        version = hub.server.cache.version("population.resident")
        model = read_topic(kafka_bootstrap, f"{topic_prefix}population.resident")
        assert version.live == len(model) == 250
        empty = dict.fromkeys(f.name for f in version.spec.fields)
        for key, value in model.items():
            row = version.row(key)
            assert row >= 0
            assert version.record(row) == {**empty, **orjson.loads(value)}
        assert hub.verify("population.resident", ids[0], {"status": "moved_out"}).match
        assert hub.verify("population.resident", ids[100], {"status": "registered"}).match
        assert not hub.verify("population.resident", ids[260]).found
