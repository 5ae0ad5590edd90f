"""The README's walk-through of reporting a case's steps, run as written."""

from __future__ import annotations

import contextlib
import io
import os

from tests.hubtest import RunningHub
from tests.readme import blocks
from tests.supervision_kit import load_power_list


def test_readme_walkthrough(hub: RunningHub, monkeypatch) -> None:
    load_power_list(hub)
    [(_, code)] = blocks("supervision")
    monkeypatch.setitem(os.environ, "HUB_ADDRESS", hub.address)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md supervision", "exec"), {})
    printed = out.getvalue().splitlines()
    assert printed[:3] == ["accept recorded; next investigate", "investigate recorded; next inform",
                           "inform recorded; next decide"]  # fmt: skip
    assert printed[3].startswith("FAILED_PRECONDITION step: decide on case 510600-CF-2017-0815 is a major decision")
    assert printed[4] == "closed True"
    case = hub.server.supervision.book.case("510600-CF-2017-0815")
    assert case is not None and case.reviewed and case.published_at_ms and case.closed
