"""REST/JSON endpoints as sources, polled page by page.

Two paging styles that do not lose rows when data changes between requests:

- ``cursor``: the endpoint returns ``next_cursor`` (a position in its change feed); the source
  offset is that cursor.
- ``keyset``: the endpoint filters ``since`` (update time) and ``after`` (key) and returns rows in
  (update time, key) order; the source offset is the last (time, key) seen. Page numbers are not
  used for progress: rows updated while paging would shift between pages and be skipped.

Rows are located in the response by a dotted ``items_path`` (``data.list``). A bearer token, if any,
is a secret and never logged.
"""

from __future__ import annotations

import email.utils
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Literal

import orjson

from hub.connect.source import Backpressure, Source, SourceRecord

log = logging.getLogger(__name__)


UNREACHABLE_RETRY_S = 5.0


def _retry_after_s(header: str | None) -> float:
    """Retry-After in seconds or as an HTTP date; 1 s when absent or unreadable."""
    if not header:
        return 1.0
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, when.timestamp() - time.time())


class RestSource(Source):
    def __init__(
        self,
        url: str,
        *,
        paging: Literal["cursor", "keyset"],
        items_path: str,
        key: str = "",
        updated: str = "",
        page_size: int = 500,
        token: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        self.paging = paging
        self.items_path = items_path.split(".")
        self.key = key
        self.updated = updated
        self.page_size = page_size
        self._token = token
        self.timeout_s = timeout_s
        self._position: Any = None
        self._exhausted = False
        self._stopped = False

    @property
    def partition(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.netloc}{parts.path}"

    def setup(self, offsets: Mapping[str, Any]) -> None:
        self._position = offsets.get(self.partition)

    def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        request = urllib.request.Request(f"{self.url}?{query}", headers={"Accept": "application/json"})
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body: dict[str, Any] = orjson.loads(response.read())
                return body
        except urllib.error.HTTPError as exc:
            if exc.code in (429, 502, 503, 504):  # the department's system asks us to slow down
                raise Backpressure(_retry_after_s(exc.headers.get("Retry-After"))) from exc
            raise
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            # down for maintenance, or a network blip: try again later, as a department's API is
            log.warning("%s unreachable (%s); retrying in %.0fs", self.partition, exc, UNREACHABLE_RETRY_S)
            raise Backpressure(UNREACHABLE_RETRY_S) from exc

    def poll(self, max_records: int) -> list[SourceRecord]:
        if self._stopped:
            return []
        size = min(max_records, self.page_size)
        if self.paging == "cursor":
            body = self._get({"cursor": self._position, "limit": size})
        else:
            since, after = self._position or (None, None)
            body = self._get({"since": since, "after": after, "size": size, "page": 1})
        items: Any = body  # walked down items_path to the list
        for part in self.items_path:
            items = items[part]
        out = []
        for i, item in enumerate(items):
            if self.paging == "cursor":
                offset = body.get("next_cursor", self._position) if i == len(items) - 1 else self._position
            else:
                offset = [item[self.updated], item[self.key]]
            out.append(SourceRecord(self.partition, offset, item))
        if self.paging == "cursor":
            self._position = body.get("next_cursor", self._position)
            self._exhausted = not body.get("has_more")
        else:
            if out:
                self._position = out[-1].offset
            self._exhausted = len(items) < size
        return out

    @property
    def idle(self) -> bool:
        return self._exhausted

    def stop(self) -> None:
        self._stopped = True
