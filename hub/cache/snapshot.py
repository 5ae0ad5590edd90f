"""Snapshots: a resource's live rows as an Arrow IPC file, with the Kafka offsets they reflect.

A replica that restarts loads each snapshot and replays only the topic's tail
from the stored offsets, instead of the whole topic.

Crash safety: the file is written under a temporary name, fsynced, renamed
over the previous snapshot and the directory fsynced. A crash at any moment
leaves either the old snapshot or the new one, both consistent, because each
holds exactly the rows of one immutable table version and that version's
offsets. Replaying from a snapshot's offsets is idempotent (records are
keyed upserts and tombstones), so the cache ends equal to the topic.

A snapshot is used only if it matches: the same format, the same resource
schema, the same shard (a sharded replica's snapshot holds only its shard's
partitions), and the same topic identity (cluster id and topic id). A snapshot of
a topic that was deleted and recreated, or of another cluster (an embedded
memory broker that restarted), is ignored and the topic is replayed in full.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from hub.cache.table import TableVersion, Watermark
from hub.catalogue.model import ResourceSpec

log = logging.getLogger(__name__)

FORMAT = 1
META_KEY = b"hub.snapshot"
CHUNK_ROWS = 262144


def schema_fingerprint(spec: ResourceSpec) -> str:
    text = "|".join(f"{f.name}:{f.type}" for f in spec.fields) + f"|v{spec.schema_version}|key={spec.key}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SnapshotInfo:
    resource: str
    rows: int
    offsets: tuple[int, ...]
    identity: str
    written_at_ms: int
    path: Path


def snapshot_path(directory: Path, resource: str) -> Path:
    return directory / f"{resource}.arrow"


def write_snapshot(directory: Path, version: TableVersion, identity: str, shard: str = "0/1") -> SnapshotInfo:
    """Writes ``version`` atomically; returns what was written."""
    spec = version.spec
    directory.mkdir(parents=True, exist_ok=True)
    final = snapshot_path(directory, spec.name)
    tmp = directory / f".{spec.name}.arrow.{os.getpid()}.tmp"
    meta: dict[str, Any] = {
        "format": FORMAT,
        "resource": spec.name,
        "schema": schema_fingerprint(spec),
        "identity": identity,
        "shard": shard,
        "offsets": list(version.watermark.offsets),
        "last_record_at_ms": version.watermark.last_record_at_ms,
        "rows": version.live,
        "written_at_ms": int(time.time() * 1000),
    }
    rows = 0
    try:
        with pa.OSFile(str(tmp), "wb") as sink:
            writer = None
            for batch in version.iter_batches(CHUNK_ROWS):
                if writer is None:
                    writer = ipc.new_file(sink, batch.schema.with_metadata({META_KEY: orjson.dumps(meta)}))
                writer.write_batch(batch)
                rows += batch.num_rows
            if writer is None:  # no rows: still record the offsets
                empty = version.empty_batch()
                writer = ipc.new_file(sink, empty.schema.with_metadata({META_KEY: orjson.dumps(meta)}))
            writer.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)
    return SnapshotInfo(spec.name, rows, tuple(meta["offsets"]), identity, meta["written_at_ms"], final)


def read_snapshot(
    directory: Path, spec: ResourceSpec, identity: str, partitions: int, shard: str = "0/1"
) -> tuple[pa.Table, Watermark] | None:
    """The snapshot's table and watermark, or None if there is none or it does not match."""
    path = snapshot_path(directory, spec.name)
    if not path.exists():
        return None
    try:
        reader = ipc.open_file(pa.memory_map(str(path), "r"))
        meta = orjson.loads(reader.schema.metadata[META_KEY])
        problem = None
        if meta.get("format") != FORMAT:
            problem = f"format {meta.get('format')} is not {FORMAT}"
        elif meta.get("schema") != schema_fingerprint(spec):
            problem = "the resource's schema changed"
        elif meta.get("identity") != identity:
            problem = f"it belongs to topic {meta.get('identity')}, not {identity}"
        elif meta.get("shard", "0/1") != shard:
            problem = f"it holds shard {meta.get('shard', '0/1')}, this replica shard {shard}"
        elif len(meta["offsets"]) != partitions:
            problem = f"it has {len(meta['offsets'])} partitions, the topic {partitions}"
        if problem:
            log.warning("ignoring snapshot %s: %s; replaying the topic", path, problem)
            return None
        table = reader.read_all()
    except (OSError, pa.ArrowInvalid, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        log.warning("ignoring unreadable snapshot %s: %s", path, exc)
        return None
    return table, Watermark(tuple(meta["offsets"]), 0, meta.get("last_record_at_ms", 0))
