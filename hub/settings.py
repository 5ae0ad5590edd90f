"""Typed settings, from the environment (``HUB_*``) or command-line options.

Unknown settings are errors (``extra="forbid"``) and secrets are ``SecretStr``
so they never appear in logs or ``repr``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="forbid", frozen=True)

    bootstrap_servers: str = Field(default="", description="Kafka bootstrap servers. Empty: start the embedded broker.")
    embedded_broker: Literal["memory", "durable"] = Field(
        default="memory", description="Embedded broker storage: memory, or durable (SeaweedFS S3)."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    topic_prefix: str = Field(default="hub.", description="Prefix of every topic the hub uses.")
    host: str = Field(default="127.0.0.1", description="Address the gRPC server binds.")
    port: int = Field(default=50051, ge=0, le=65535, description="gRPC port (0: pick a free one).")
    data_dir: Path = Field(default=Path(".hub-data"), description="Logs, snapshots and broker data.")
    catalogue_path: Path | None = Field(default=None, description="A catalogue TOML instead of the built-in one.")
    snapshot_interval_s: float = Field(
        default=60.0, ge=0, description="Seconds between cache snapshots; 0 disables them (replay on start)."
    )
    log_level: str = "INFO"

    def kafka_extra(self) -> dict[str, str]:
        """librdkafka security settings for an external cluster."""
        extra = {"security.protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            extra |= {
                "sasl.mechanism": self.kafka_sasl_mechanism,
                "sasl.username": self.kafka_sasl_username,
                "sasl.password": self.kafka_sasl_password.get_secret_value(),
            }
        return extra
