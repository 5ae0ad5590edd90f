"""The source side of the connector SDK.

A departmental connector has two halves:

- a :class:`Source` that reads native rows from the department's system (a
  file drop, a database table, a REST endpoint) and says where each row is,
  as a *source offset* per *source partition*;
- a :class:`Connector` that maps one native row to a record of a catalogue
  resource.

The runtime (:mod:`hub.connect.runtime`) publishes the mapped records to the
hub and stores each source partition's offset only after the hub has
acknowledged every record up to it. A restarted connector resumes from there:
at-least-once delivery, and no duplicate effect because upserts are keyed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple


class SourceRecord(NamedTuple):  # one per row read: a tuple is made in a third of a frozen dataclass's time
    """One native row, and where the source stands once it is delivered."""

    partition: str
    offset: Any  # JSON-serialisable; the position *after* this row
    row: Mapping[str, Any]
    delete: bool = False  # the row was deleted; ``row`` holds at least its key columns
    line: int = 0  # for error reports: the row's line or sequence number
    control: bool = False  # carries only a position (e.g. "snapshot done"); nothing to publish
    # The source could not read this row (a broken line, an unreadable rest of a file): the reason.
    # ``row`` then holds what was read of it, for the report. The runtime dead-letters the row.
    error: str | None = None


class MappingError(ValueError):
    """A native row that cannot be mapped. Reported to the dead letter, never dropped."""

    def __init__(self, reason: str, *, field: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class Backpressure(Exception):
    """Raised by a sink that cannot take more now; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float = 1.0) -> None:
        super().__init__(f"retry after {retry_after:.1f}s")
        self.retry_after = retry_after


class Source(ABC):
    """Reads native rows. Contract:

    - :meth:`setup` is called once with the stored offsets before the first poll.
    - :meth:`poll` returns at most ``max_records`` rows and must not block for
      long (return ``[]`` when nothing is ready); it is called from one thread.
    - :meth:`acknowledged` tells the source which offsets are durable in the
      hub, e.g. to delete processed files. Optional.
    - :meth:`stop` may be called from another thread; poll should then return soon.
    - :attr:`finished` is True once a bounded source (a file) has nothing more; :attr:`idle` when a
      live source (a table, an endpoint) has caught up for now.
    - :meth:`poll` may raise :class:`Backpressure` when the department's system asks for a pause.
    """

    def setup(self, offsets: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Resume from ``offsets`` (source partition → offset)."""

    @abstractmethod
    def poll(self, max_records: int) -> list[SourceRecord]: ...

    def acknowledged(self, offsets: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Offsets now stored: everything up to them is in the hub."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Called from any thread."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

    def fetch(self, key: str) -> Mapping[str, Any] | None:
        """The current native row with this key, for reviewing a disputed value; None if absent.
        Optional: sources that cannot look one row up leave disputes to a person. May be called
        from another thread than :meth:`poll`."""
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        """A bounded source (a file) has nothing more, ever."""
        return False

    @property
    def idle(self) -> bool:
        """The last poll found nothing more for now (a live source caught up)."""
        return self.finished


@dataclass(frozen=True, slots=True)
class Dispute:
    """A consumer's dispute of one value, routed to the connector of the resource's provider."""

    id: str
    resource: str
    key: str
    field: str
    proposed_value: str
    evidence_ref: str
    filed_by: str
    due_ms: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """A connector's answer to a dispute (see :meth:`Connector.review`)."""

    state: Literal["corrected", "confirmed"]
    note: str


class Connector(ABC):
    """Maps one department's native rows to a catalogue resource.

    Subclasses set :attr:`name` (the short name of ``hub connector run``),
    :attr:`resource` and :attr:`department`, and implement :meth:`map` and
    :meth:`key`.
    """

    name: ClassVar[str]
    resource: ClassVar[str]
    department: ClassVar[str]
    title: ClassVar[str] = ""

    @abstractmethod
    def map(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The catalogue record for a native row. Raise MappingError for a bad row."""

    @abstractmethod
    def key(self, row: Mapping[str, Any]) -> str:
        """The resource key of a native row (used for deletes)."""

    def deleted(self, row: Mapping[str, Any]) -> bool:
        """Whether a native row marks a deletion (a soft-delete flag). Sources report hard deletes."""
        return False

    def review(self, dispute: Dispute, source: Source) -> Verdict | None:
        """Answer a dispute about one of this resource's values, or None to leave it to a person.

        The default looks the row up at the source: if the source now holds the proposed value
        (the department fixed it, and the change is on its way), the dispute is *corrected*.
        Anything else needs a person's judgement. Override to confirm values automatically.
        """
        try:
            row = source.fetch(dispute.key)
        except NotImplementedError:
            return None
        if row is None or self.deleted(row):
            return None
        current = self.map(row).get(dispute.field)
        if current is not None and str(current) == dispute.proposed_value:
            return Verdict("corrected", f"the source now holds {dispute.field} = {dispute.proposed_value!r}")
        return None

    @abstractmethod
    def default_source(self, location: str) -> Source:
        """The source this department normally uses, reading from ``location``."""
