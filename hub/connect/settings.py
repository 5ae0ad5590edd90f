"""A connector's typed settings, from a TOML file: ``hub connector run --config FILE``.

Unknown keys are errors (``extra="forbid"``). The source location is a secret, because a DSN or
URL may carry a password or token: it is never printed or logged, only ``****``.

    type = "social_security"            # short name, or package.module:Class
    source = "postgresql://hr:secret@db.hr.local/si"
    hub = "hub.city.local:50051"
    once = false
    [tls]
    ca = "/etc/hub/ca.crt"
    cert = "/etc/hub/human_resources.crt"
    key = "/etc/hub/human_resources.key"
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ca: Path = Field(description="The hub CA's certificate (ca.crt).")
    cert: Path = Field(description="This department's certificate.")
    key: Path = Field(description="This department's private key.")

    def paths(self) -> tuple[Path, Path, Path]:
        return self.ca, self.cert, self.key


class ConnectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(description="The connector: short name (see 'hub connector list') or package.module:Class.")
    source: SecretStr = Field(description="Where the source reads: a file or folder, a PostgreSQL DSN, a URL.")
    hub: str = Field(default="127.0.0.1:50051", description="Hub address HOST:PORT.")
    tls: TlsSettings | None = Field(default=None, description="Mutual TLS; unset: insecure development mode.")
    state_dir: Path | None = Field(
        default=None, description="Offsets and dead letter. Unset: .hub-data/connectors/NAME."
    )
    batch_size: int = Field(default=2000, ge=1, le=10000, description="Records per Publish call.")
    max_in_flight: int = Field(default=4, ge=1, le=64, description="Publish calls outstanding at once.")
    jsonl: bool = Field(
        default=True,
        description="Send upserts as one JSON Lines blob per call; false for a hub older than Publish's jsonl field.",
    )
    once: bool = Field(
        default=False,
        description="Stop once a live source (table, endpoint, drop folder) has caught up. A file always stops.",
    )
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="Serve Prometheus metrics here.")

    @classmethod
    def from_toml(cls, path: Path) -> ConnectorSettings:
        with path.open("rb") as f:
            return cls.model_validate(tomllib.load(f))
