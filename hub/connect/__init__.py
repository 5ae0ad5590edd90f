"""The connector SDK: sources, connectors, and the runtime that publishes to the hub.

Start with :mod:`hub.connect.source` (the interfaces), then
:mod:`hub.connect.runtime` (what happens to your records).
"""

from hub.connect.registry import resolve_connector
from hub.connect.source import Backpressure, Connector, Dispute, MappingError, Source, SourceRecord, Verdict

__all__ = [
    "Backpressure",
    "Connector",
    "Dispute",
    "MappingError",
    "Source",
    "SourceRecord",
    "Verdict",
    "resolve_connector",
]
