"""The snapshot directory runs out of space (a small tmpfs): the snapshot that no longer fits fails
without touching the previous one, the hub keeps serving and stops cleanly, and a restart loads the
previous snapshot and replays the rest: every acknowledged record is there."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from hub.datagen.city import resident_ids
from tests.faults import read_topic
from tests.hubtest import resident, running_hub

RESOURCE = "population.resident"


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "snapshots"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_snapshot_disk_keeps_the_previous_snapshot(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, small_disk: Path
) -> None:
    ids = resident_ids(81, 6000)
    snapshot = small_disk / topic_prefix.rstrip(".") / f"{RESOURCE}.arrow"
    options = {"snapshot_interval_s": 3600.0}  # snapshots only when this test asks, and at stop
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path, **options) as hub:
        first = hub.publish(RESOURCE, [resident(r) for r in ids[:100]])
        hub.verify(RESOURCE, ids[99], after=first)
        hub.server.cache.snapshot_all()
        kept = snapshot.read_bytes()
        acknowledged = 100
        for start in range(100, len(ids), 2000):
            acknowledged += hub.publish(RESOURCE, [resident(r) for r in ids[start : start + 2000]]).accepted
        assert hub.verify(RESOURCE, ids[-1], after=hub.publish(RESOURCE, [resident(ids[-1])])).found
        with pytest.raises(OSError) as full:
            hub.server.cache.snapshot_all()
        assert full.value.errno == errno.ENOSPC or "No space" in str(full.value), full.value
        assert snapshot.read_bytes() == kept, "the previous snapshot was touched"
        assert not list(snapshot.parent.glob(".*.tmp")), "a partial snapshot was left behind"
        assert hub.verify(RESOURCE, ids[3000]).found  # still serving
    assert snapshot.read_bytes() == kept  # the final snapshot at stop failed the same way, and the hub stopped
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path, **options) as hub:
        cache = hub.server.cache
        assert cache.loaded_from_snapshot.get(RESOURCE) == 100
        in_kafka = read_topic(kafka_bootstrap, f"{topic_prefix}{RESOURCE}")
        version = cache.version(RESOURCE)
        assert acknowledged == len(ids) == len(in_kafka) == version.live
        assert (version.rows(ids) >= 0).all()
    print(
        f"snapshot disk full: {acknowledged} acknowledged, {version.live} in the cache after restart, "
        f"{len(kept):,}-byte previous snapshot kept and loaded"
    )
