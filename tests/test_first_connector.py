"""The README's "Write your first connector", step by step, in a copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hubtest import running_hub
from tests.readme import blocks

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_first_connector_walkthrough(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", ".hub-data", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"
        ),
    )
    with running_hub(kafka_bootstrap, topic_prefix, tmp_path / "hub") as hub:
        env = {
            **os.environ,
            "HUB": hub.address,
            "PYTHONPATH": str(project),
            "HUB_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        for _, script in blocks("first-connector"):
            for line in script.strip().splitlines():
                done = subprocess.run(
                    ["bash", "-c", line], cwd=project, env=env, capture_output=True, text=True, timeout=600
                )
                assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert (project / "connectors" / "county_licences.py").exists()
        assert "20 records published" in done.stderr
        deadline = time.monotonic() + 120  # a guard only
        while hub.server.cache.version("approval.licence").live < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert hub.server.cache.version("approval.licence").live == 20
