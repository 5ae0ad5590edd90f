"""Typed settings, from the environment (``HUB_*``) or command-line options.

Unknown settings are errors (``extra="forbid"``) and secrets are ``SecretStr``
so they never appear in logs or ``repr``. Every field has a description: ``hub serve --help``
is generated from them (:mod:`hub.cli.options`).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="forbid", frozen=True)

    bootstrap_servers: str = Field(default="", description="Kafka bootstrap servers. Empty: start the embedded broker.")
    embedded_broker: Literal["memory", "durable"] = Field(
        default="memory", description="Embedded broker storage: memory, or durable (SeaweedFS S3)."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="security.protocol towards an external Kafka cluster."
    )
    kafka_sasl_mechanism: str = Field(
        default="", description="sasl.mechanism (e.g. SCRAM-SHA-512); empty: no SASL settings are passed."
    )
    kafka_sasl_username: str = Field(default="", description="sasl.username, with kafka_sasl_mechanism.")
    kafka_sasl_password: SecretStr = Field(
        default=SecretStr(""), description="sasl.password, with kafka_sasl_mechanism."
    )
    kafka_idempotence: bool = Field(
        default=True,
        description="Idempotent producers. Off on the durable embedded broker (set when the hub starts it; "
        "replicas sharing a durable 'hub broker' need --no-kafka-idempotence).",
    )
    topic_prefix: str = Field(default="hub.", description="Prefix of every topic the hub uses.")
    host: str = Field(default="127.0.0.1", description="Address the gRPC server binds.")
    port: int = Field(default=50051, ge=0, le=65535, description="gRPC port (0: pick a free one).")
    data_dir: Path = Field(default=Path(".hub-data"), description="Logs, snapshots and broker data.")
    catalogue_path: Path | None = Field(default=None, description="A catalogue TOML instead of the built-in one.")
    snapshot_interval_s: float = Field(
        default=60.0, ge=0, description="Seconds between cache snapshots; 0 disables them (replay on start)."
    )
    tls_dir: Path | None = Field(
        default=None, description="PKI directory from 'hub certs init': mutual TLS with department certificates."
    )
    insecure_dev: bool = Field(
        default=False, description="No TLS; callers name their department in a header. Demos and tests only."
    )
    audit: bool = Field(default=True, description="Write the audit trail. Off only to measure what it costs.")
    audit_backlog_limit: int = Field(default=200_000, ge=1000, description="Audit entries queued before refusing.")
    audit_checkpoint_every: int = Field(default=1000, ge=1, description="Entries between signed checkpoints.")
    audit_checkpoint_interval_s: float = Field(default=5.0, gt=0, description="Seconds between signed checkpoints.")
    audit_subject_key: SecretStr | None = Field(
        default=None, description="HMAC key for subject digests; default: from the TLS directory or data dir."
    )
    receipt_issuer: str = Field(
        default="city-exchange-hub", description="The hub's name in the verification receipts it signs (iss)."
    )
    access_request_working_days: int = Field(
        default=10, ge=1, description="Working days a provider has to decide an access request."
    )
    holidays: tuple[dt.date, ...] = Field(default=(), description="Public holidays that are not working days.")
    change_ring_capacity: int = Field(
        default=20_000,
        ge=10,
        description="Recent changes kept per topic (shared by its partitions) for subscribers; older come from Kafka.",
    )
    notice_engine: bool = Field(
        default=True, description="Create notices from market registrations here (one owner per partition)."
    )
    notices_since: dt.datetime | None = Field(
        default=None,
        description="Go-live cut-over: market records written before it create no notices, and later changes "
        "notice only scope items added since. Unset: every registration on the topic is news.",
    )
    notice_claim_limit_s: float = Field(
        default=2 * 86400, gt=0, description="Seconds a notice may stay unclaimed before it raises an alert."
    )
    notice_feedback_limit_s: float = Field(
        default=20 * 86400,
        gt=0,
        description="Seconds a claimed notice may go without feedback before it raises an alert.",
    )
    correction_working_days: int = Field(
        default=5, ge=1, description="Working days a provider has to answer a correction request."
    )
    # Supervision of the administrative-power platform (hub.supervision).
    supervision_answer_days: int = Field(default=5, ge=1, description="Working days to answer a supervision alert.")
    supervision_sweep_s: float = Field(default=30.0, gt=0, description="Seconds between deadline sweeps.")
    supervising_office: str = Field(default="supervision_office", description="Department that receives every alert.")
    publicity_retention_days: int = Field(default=1826, ge=1, description="Days a decision stays on the feed.")
    publicity_natural_person_days: int = Field(
        default=183, ge=1, description="Days a decision about a natural person stays on the publicity feed."
    )
    metrics_port: int | None = Field(
        default=9464, ge=0, le=65535, description="Prometheus metrics port (0: pick a free one; unset: none)."
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the metrics endpoint binds (0.0.0.0 in a container or pod)."
    )
    workers: int = Field(default=1, ge=1, le=64, description="Server processes sharing the gRPC port (SO_REUSEPORT).")
    worker_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Worker i also serves on this port + i, its own (unset: none). The shared port spreads "
        "connections over the workers, not calls: a client holding few connections spreads its calls with "
        "gRPC's round_robin over these (hub.client.workers_target).",
    )
    snapshot_writer: bool = Field(
        default=True, description="Whether this process writes snapshots; of several workers only the first does."
    )
    shard: str = Field(
        default="",
        description="I/N: hold only shard I of N (numbered from 0) of every resource topic's partitions "
        "(partition p is shard p mod N's). Empty: the whole cache.",
    )
    advertise_address: str = Field(
        default="",
        description="HOST:PORT other replicas and routing clients reach this one at (sharded hubs). Empty: host:port.",
    )
    shard_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="A sharded replica renews its place in the shard map every third of this; one not heard "
        "from for this long (killed, cut off) drops out of the map. Replicas' clocks must agree well within it.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log level written to stderr."
    )

    @field_validator("shard")
    @classmethod
    def _shard_form(cls, value: str) -> str:
        if value and not re.fullmatch(r"\d+/\d+", value):
            raise ValueError(f"{value!r} is not I/N (shard I of N, numbered from 0, e.g. 0/4)")
        return value

    @model_validator(mode="after")
    def _worker_ports_fit(self) -> HubSettings:
        if self.worker_port:
            last = self.worker_port + self.workers - 1
            if last > 65535:
                raise ValueError(f"worker_port: {self.worker_port} + {self.workers} workers passes port 65535")
            if self.worker_port <= self.port <= last:
                raise ValueError(
                    f"worker_port: the workers' own ports {self.worker_port}-{last} include the shared port {self.port}"
                )
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    # -- random inspections and the public site (hub.inspections, hub.public) --
    public_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Public site port (results feeds, publicity, receipt JWKS); 0: a free one; unset: none.",
    )
    inspection_publish_working_days: int = Field(default=20, ge=1, description="Deadline to publish a result.")

    @field_validator("public_port", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        return None if value in ("off", "") else value

    def kafka_extra(self) -> dict[str, str]:
        """librdkafka security settings for an external cluster."""
        extra: dict[str, str] = {"security.protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            extra |= {
                "sasl.mechanism": self.kafka_sasl_mechanism,
                "sasl.username": self.kafka_sasl_username,
                "sasl.password": self.kafka_sasl_password.get_secret_value(),
            }
        return extra


class SettingsError(ValueError):
    """Settings valid one by one but not for what was asked (serving with neither TLS nor insecure_dev)."""


def secret_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The names of ``model``'s ``SecretStr`` fields (optional ones too): what is never shown or logged."""
    return tuple(
        name
        for name, field in model.model_fields.items()
        if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
    )


def require_transport(settings: HubSettings) -> None:
    """Serving needs mutual TLS from a complete PKI directory, or insecure_dev asked for explicitly."""
    if settings.tls_dir is None:
        if not settings.insecure_dev:
            raise SettingsError("set tls_dir (HUB_TLS_DIR, --tls-dir) for mutual TLS, or insecure_dev for a demo")
        return
    missing = [name for name in ("ca.crt", "server.crt", "server.key") if not (settings.tls_dir / name).is_file()]
    if missing:
        raise SettingsError(
            f"the TLS directory {settings.tls_dir} lacks {', '.join(missing)} (create it with 'hub certs init')"
        )
