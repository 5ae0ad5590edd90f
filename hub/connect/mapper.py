"""The connector runtime's first step: a source's records become batches of entries to publish."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import orjson

from hub.connect.batches import Batch, Entry, RunStats
from hub.connect.source import Connector, MappingError, SourceRecord
from hub.connect.state import DeadLetterFile


class Mapper:
    """Maps native rows with the connector and cuts them into batches.

    Contract:

    - called only on the runtime thread; does not block (a dead-letter report is an append to a
      local file, forced to disk by the committer before an offset covers it);
    - a record the source could not read (:attr:`SourceRecord.error`) or the connector cannot map
      (:class:`MappingError`) goes to the dead letter with the reason, and its entry is done at
      once; so is a control record's. Either keeps its place in its batch, so its offset is stored
      in order with its neighbours';
    - any other exception from the connector is a bug in it and propagates.
    """

    def __init__(self, connector: Connector, dead_letter: DeadLetterFile, stats: RunStats) -> None:
        self.connector = connector
        self.dead_letter = dead_letter
        self.stats = stats
        self._seq = itertools.count()

    def batches(self, records: Sequence[SourceRecord], size: int) -> list[Batch]:
        """``records`` (a source may return whole transactions, more than asked) cut into batches of
        at most ``size``, numbered on from the last call's."""
        self.stats.read += sum(not r.control for r in records)
        out = []
        for start in range(0, len(records), size):
            entries = [self.entry(r) for r in records[start : start + size]]
            out.append(Batch(next(self._seq), entries, remaining=sum(not e.done for e in entries)))
        return out

    def entry(self, rec: SourceRecord) -> Entry:
        entry = Entry(rec)
        if rec.control:
            entry.done = True
            return entry
        row = rec.row
        try:
            if rec.error is not None:
                raise MappingError(rec.error)
            if rec.delete or self.connector.deleted(row):
                entry.delete = True
                entry.key = self.connector.key(row)
            else:
                entry.record = self.connector.map(row)
                entry.payload = orjson.dumps(entry.record)
        except MappingError as exc:
            reason = f"{exc.field}: {exc.reason}" if exc.field else exc.reason
            self.dead_letter.write(
                partition=rec.partition, line=rec.line, reason=reason, row=dict(row), stage="mapping"
            )
            self.stats.dead_lettered += 1
            entry.done = True
        return entry

    def key_of(self, entry: Entry) -> str:
        """The resource key of a mapped entry."""
        return entry.key if entry.delete else self.connector.key(entry.source.row)
