"""The enforcement-officer registry (执法人员库): the Justice Bureau's ``enforcement.officer`` resource
as the cache holds it, and the one rule for a certificate valid on a date.

Random inspections draw inspectors from it, the administrative-power platform checks who reported a
case step against it, and the publicity pages list its officers; all of them ask
:func:`certificate_problem`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np

from hub.cache.table import TableVersion

RESOURCE = "enforcement.officer"


def certificate_problem(officer: Mapping[str, Any], on: dt.date) -> str | None:
    """Why ``officer``'s certificate is not valid on ``on``; None when it is: its status is valid and
    valid_from <= on <= valid_to (ISO dates, both days included)."""
    cert, day = officer["cert_no"], on.isoformat()
    if officer["status"] != "valid":
        return f"certificate {cert} is {officer['status']}"
    if day < officer["valid_from"]:
        return f"certificate {cert} is valid only from {officer['valid_from']}"
    if day > officer["valid_to"]:
        return f"certificate {cert} expired on {officer['valid_to']}"
    return None


def acting_problem(version: TableVersion, cert_no: str, department: str, on: dt.date) -> str | None:
    """Why the holder of ``cert_no`` may not act for ``department`` on ``on``; None when they may."""
    row = version.row(cert_no)
    if row < 0:
        return f"no enforcement certificate {cert_no!r} in {RESOURCE}"
    officer = version.record(row)
    problem = certificate_problem(officer, on)
    if problem is None and officer["department"] != department:
        problem = f"certificate {cert_no} is of {officer['department']}, not {department}"
    return problem


def valid_on(version: TableVersion, on: dt.date, rows: np.ndarray | None = None) -> list[dict[str, Any]]:
    """The officers (of ``rows``, default every live one) whose certificate is valid on ``on``."""
    found = (version.record(int(r)) for r in (version.live_rows() if rows is None else rows))
    return [o for o in found if certificate_problem(o, on) is None]
