"""File drops: CSV, JSON Lines and Excel sheets, read row by row.

The source partition is the file's path with its size and modification time
(a file dropped again under the same name is new), and the offset is the
number of data rows consumed, so a restarted connector skips what the hub
already has. Rows that cannot be parsed (a broken JSON line, a short CSV row)
are passed on as records with an ``error`` (and what was read of them), and the
runtime reports them to the dead letter; so is the rest of a file that cannot be
read on (a wrong encoding).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import orjson

from hub.connect.source import Source, SourceRecord

log = logging.getLogger(__name__)

FileFormat = Literal["csv", "jsonl", "xlsx"]
# (line number, the row, or what was read of it, and why it cannot be used: None for a good row)
Rows = Iterator[tuple[int, Mapping[str, Any], str | None]]


def detect_format(path: Path) -> FileFormat:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    raise ValueError(f"{path}: unknown file type {suffix!r} (use .csv, .jsonl or .xlsx)")


def _csv_rows(path: Path, encoding: str) -> Rows:
    with path.open(encoding=encoding, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        width = len(header)
        for number, cells in enumerate(reader, start=2):
            if len(cells) != width:
                yield number, {"cells": cells}, f"line {number}: {len(cells)} cells, the header has {width}"
            else:
                yield number, dict(zip(header, cells, strict=False)), None  # length checked above


def _jsonl_rows(path: Path, encoding: str) -> Rows:
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(
                    line if encoding.lower().replace("-", "") in ("utf8", "utf8sig") else line.decode(encoding).encode()
                )
            except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                yield number, _text(line, encoding), f"line {number}: not valid JSON: {exc}"
                continue
            if not isinstance(row, dict):
                yield number, _text(line, encoding), f"line {number}: expected a JSON object"
            else:
                yield number, row, None


def _text(line: bytes, encoding: str) -> dict[str, str]:
    """An unusable line as text, for the dead letter."""
    return {"text": line.decode(encoding, errors="replace").rstrip("\r\n")}


def _xlsx_rows(path: Path, sheet: str | None) -> Rows:
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(str(path))
    name = sheet or workbook.sheet_names[0]
    rows = iter(workbook.get_sheet_by_name(name).to_python(skip_empty_area=True))
    header = [str(h).strip() for h in next(rows, [])]
    for number, cells in enumerate(rows, start=2):
        if all(c in ("", None) for c in cells):
            continue
        yield number, {h: c for h, c in zip(header, cells, strict=False) if h}, None


class FileSource(Source):
    """Reads one file. ``encoding`` matters for CSV exports from Windows systems (often GB18030)."""

    def __init__(
        self, path: Path | str, fmt: FileFormat | None = None, encoding: str = "utf-8-sig", sheet: str | None = None
    ) -> None:
        self.path = Path(path)
        self.format = fmt or detect_format(self.path)
        self.encoding = encoding
        self.sheet = sheet
        self._rows: Rows | None = None
        self._consumed = 0
        self._done = False
        self._stopped = False
        stat = self.path.stat()
        self.partition = f"{self.path.resolve()}@{stat.st_size}:{stat.st_mtime_ns}"

    def setup(self, offsets: Mapping[str, Any]) -> None:
        start = int(offsets.get(self.partition, 0))
        if self.format == "csv":
            self._rows = _csv_rows(self.path, self.encoding)
        elif self.format == "jsonl":
            self._rows = _jsonl_rows(self.path, self.encoding)
        else:
            self._rows = _xlsx_rows(self.path, self.sheet)
        for _ in range(start):  # rows the hub already acknowledged
            if next(self._rows, None) is None:
                break
        self._consumed = start

    def poll(self, max_records: int) -> list[SourceRecord]:
        if self._rows is None:
            self.setup({})
        out: list[SourceRecord] = []
        if self._done or self._stopped:
            return out
        partition = self.partition
        try:
            for number, row, error in self._rows:  # type: ignore[union-attr]
                self._consumed += 1
                out.append(SourceRecord(partition, self._consumed, row, line=number, error=error))
                if len(out) >= max_records:
                    return out
        except (UnicodeDecodeError, csv.Error, OSError) as exc:  # the rest cannot be read: report it, go on
            self._consumed += 1
            error = f"{self.path.name} unreadable after row {self._consumed - 1}: {exc}"
            out.append(SourceRecord(partition, self._consumed, {}, error=error))
        self._done = True
        return out

    def stop(self) -> None:
        self._stopped = True

    @property
    def finished(self) -> bool:
        return self._done or self._stopped


class FileDropSource(Source):
    """A drop folder: files are read in name order, and new files are picked up as they arrive.

    Each file is a source partition whose offset is the number of rows consumed, or ``"done"``.
    Departments should write a drop under a temporary name and rename it when complete; names
    starting with "." or ending in ".tmp" or ".part" are ignored.
    """

    def __init__(
        self,
        directory: Path | str,
        fmt: FileFormat | None = None,
        encoding: str = "utf-8-sig",
        sheet: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.format = fmt
        self.encoding = encoding
        self.sheet = sheet
        self._offsets: dict[str, Any] = {}
        self._current: FileSource | None = None
        self._ignored: set[Path] = set()
        self._idle = False
        self._stopped = False

    def setup(self, offsets: Mapping[str, Any]) -> None:
        self._offsets = dict(offsets)

    def _next_file(self) -> FileSource | None:
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith(".") or path.suffix in (".tmp", ".part") or not path.is_file():
                continue
            try:
                fmt = self.format or detect_format(path)
            except ValueError as exc:  # a stray file must not block the drops after it
                if path not in self._ignored:
                    self._ignored.add(path)
                    log.warning("ignoring %s", exc)
                continue
            source = FileSource(path, fmt, self.encoding, self.sheet)
            if self._offsets.get(source.partition) != "done":
                source.setup(self._offsets)
                return source
        return None

    def poll(self, max_records: int) -> list[SourceRecord]:
        if self._stopped:
            return []
        if self._current is None:
            self._current = self._next_file()
            if self._current is None:
                self._idle = True
                return []
        self._idle = False
        rows = self._current.poll(max_records)
        if self._current.finished:
            partition = self._current.partition
            self._offsets[partition] = "done"
            rows.append(SourceRecord(partition, "done", {}, control=True))
            self._current = None
        return rows

    @property
    def idle(self) -> bool:
        return self._idle

    def stop(self) -> None:
        self._stopped = True


def file_source(location: str, fmt: FileFormat | None = None, encoding: str = "utf-8-sig") -> Source:
    """A drop folder if ``location`` is a directory, else one file."""
    path = Path(location)
    return FileDropSource(path, fmt, encoding) if path.is_dir() else FileSource(path, fmt, encoding)
