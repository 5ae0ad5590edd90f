"""Runs the README's walkthrough blocks, so the documentation cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(tag: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block whose info string is ``<language> <tag>``, in order."""
    text = README.read_text()
    return [(m.group(1), m.group(2)) for m in re.finditer(rf"```(\w+) {tag}\n(.*?)```", text, re.S)]
