"""A drop folder as a department uses it: the same name dropped again, stray files, a file in the
wrong encoding. None of them may block or hide the drops after them."""

from __future__ import annotations

import os
from pathlib import Path

from hub.connect.files import FileDropSource
from hub.connect.source import SourceRecord


def _drain(source: FileDropSource) -> list[SourceRecord]:
    out: list[SourceRecord] = []
    while batch := source.poll(100):
        out.extend(batch)
    return out


def _rows(records: list[SourceRecord]) -> list[dict]:
    return [dict(r.row) for r in records if not r.control]


def test_a_file_dropped_again_under_its_name_is_read_again(tmp_path: Path) -> None:
    drop = tmp_path / "export.csv"
    drop.write_text("id,v\n1,a\n", encoding="utf-8")
    source = FileDropSource(tmp_path)
    source.setup({})
    first = _drain(source)
    assert _rows(first) == [{"id": "1", "v": "a"}]
    offsets = {r.partition: r.offset for r in first}  # what the runtime stores

    drop.write_text("id,v\n1,b\n2,c\n", encoding="utf-8")  # tomorrow's export, same name
    os.utime(drop, ns=(drop.stat().st_atime_ns, drop.stat().st_mtime_ns + 1_000_000_000))
    restarted = FileDropSource(tmp_path)
    restarted.setup(offsets)
    assert _rows(_drain(restarted)) == [{"id": "1", "v": "b"}, {"id": "2", "v": "c"}]


def test_stray_and_unreadable_files_do_not_block_later_drops(tmp_path: Path) -> None:
    (tmp_path / "1-readme.doc").write_text("not a drop")
    (tmp_path / "2-export.csv").write_bytes(b"id,v\n1,a\n2," + "德阳".encode("gb18030") + b"\n")
    (tmp_path / "3-export.csv").write_text("id,v\n3,c\n", encoding="utf-8")
    source = FileDropSource(tmp_path)  # expects UTF-8
    source.setup({})
    records = [r for r in _drain(source) if not r.control]
    assert records[0].error is not None and "2-export.csv unreadable" in records[0].error  # dead letter, with why
    assert _rows(records[1:]) == [{"id": "3", "v": "c"}]
