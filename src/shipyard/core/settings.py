"""Settings: one frozen object, read once at the edge (CLI or server start) and passed down.

Precedence: explicit arguments > ``SHIPYARD_*`` environment variables > the
``[tool.shipyard]`` table of ``./pyproject.toml`` > defaults.
"""

from __future__ import annotations

import getpass
import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
)

from shipyard.core.errors import InvalidInputError

BackendKind = Literal["sqlite", "postgresql", "http"]
DEFAULT_HOME = Path(".shipyard")


class Settings(BaseSettings):
    """Where Shipyard keeps its data and how it behaves; every field has an env var."""

    model_config = SettingsConfigDict(
        env_prefix="SHIPYARD_",
        frozen=True,
        extra="ignore",
        pyproject_toml_table_header=("tool", "shipyard"),
    )

    uri: str | None = Field(
        default=None,
        description="Store: sqlite:///path, postgresql+psycopg://..., http(s)://server, or a "
        "directory. Default: ./.shipyard/shipyard.db",
    )
    artifacts: str | None = Field(
        default=None,
        description="Artifact root: a folder or an fsspec URL such as s3://bucket/prefix. "
        "Default: 'artifacts' beside the SQLite file, or ./.shipyard/artifacts.",
    )
    token: SecretStr | None = Field(default=None, description="Bearer token for a server.")
    user: str | None = Field(default=None, description="Actor name in local mode.")
    auth: Literal["none", "tokens"] = Field(default="none", description="Server auth mode.")
    flush_interval: float = Field(
        default=1.0, gt=0, le=3600, description="Seconds between background metric flushes."
    )
    metric_buffer_size: int = Field(
        default=50_000, ge=1, le=1_000_000, description="Buffered metric points per run, at most."
    )
    max_request_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest JSON request body the server takes."
    )
    max_artifact_bytes: int = Field(
        default=5 * 1024**3, ge=1, description="Largest artifact upload the server takes."
    )
    http_timeout: float = Field(default=30.0, gt=0, description="Client HTTP timeout, seconds.")
    sqlite_synchronous: Literal["full", "normal"] = Field(
        default="full",
        description="SQLite durability: 'full' syncs every commit to disk; 'normal' (faster) "
        "survives a crash of the process but may lose the last commits on power loss.",
    )

    predlog: str | None = Field(
        default=None,
        description="Prediction log folder of the model server. Default: 'predictions' "
        "beside the SQLite file, or ./.shipyard/predictions.",
    )
    project: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="Project name: the OpenLineage namespace is shipyard://<project>.",
    )
    openlineage_url: str | None = Field(
        default=None,
        description="Send OpenLineage run events here (e.g. Marquez: http://host:5000); "
        "OPENLINEAGE_URL is read too.",
    )
    openlineage_file: str | None = Field(
        default=None, description="Append OpenLineage run events to this JSON-lines file."
    )
    webhook_allow: str = Field(
        default="",
        description="Comma-separated hosts, IPs or CIDR ranges alert webhooks may reach even "
        "though they are not public (loopback, private, link-local are refused otherwise).",
    )
    audit_retention_years: int = Field(
        default=7, ge=1, le=100, description="Years audit events and gate reports are kept."
    )
    audit_anchor: str | None = Field(
        default=None,
        description="File keeping the audit chain's signed head outside the database "
        "(default: audit-anchor.json beside the SQLite file, or in ./.shipyard/).",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description="Secret signing the audit anchor (default: a random key kept in "
        "audit.key beside the anchor, readable by its owner only).",
    )
    run_timeout: float = Field(
        default=3600.0,
        ge=0,
        description="Seconds without a heartbeat or write after which the server ends a "
        "RUNNING run as KILLED (its client died); 0 turns the sweep off.",
    )
    predlog_queue: int = Field(
        default=10_000, ge=1, le=10_000_000, description="Requests the prediction log may queue."
    )
    scheduler_interval: float = Field(
        default=0.0,
        ge=0,
        le=86_400,
        description="Seconds between scheduler passes inside `shipyard server` (0: no "
        "scheduler in the server; `shipyard server --scheduler` sets 30).",
    )
    schedule_targets: str = Field(
        default="shipyard.",
        description="The pipelines the scheduler inside `shipyard server` may import and "
        "run: comma-separated prefixes of targets (modules such as `flows.`, or folders); "
        "`*` allows any. A member can add a schedule, so this keeps them from running code "
        "of their choosing in the server process.",
    )

    edge_keys: str | None = Field(
        default=None,
        description="Folder of the Ed25519 keys that sign edge bundles (default: edge-keys "
        "beside the SQLite file, or ./.shipyard/edge-keys).",
    )
    edge_key_passphrase: SecretStr | None = Field(
        default=None, description="Encrypts new edge signing keys and opens existing ones."
    )
    automl_storage: str | None = Field(
        default=None,
        description="Optuna storage URL for AutoML studies (default: the store's own "
        "database: an 'optuna' schema on PostgreSQL, optuna.db beside a SQLite file; in "
        "memory through a server).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read arguments, then the environment, then ``[tool.shipyard]`` in pyproject.toml."""
        return (init_settings, env_settings, PyprojectTomlConfigSettingsSource(settings_cls))

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if "://" in value:
            scheme = value.split("://", 1)[0].lower()
            if not (
                scheme in ("http", "https", "sqlite")
                or scheme.startswith("postgresql")
                or scheme.startswith("sqlite+")
            ):
                raise InvalidInputError(
                    "SHIPYARD_URI scheme must be one of sqlite, postgresql[+psycopg], http, "
                    f"https; got {scheme!r}",
                    value=value,
                )
        return value

    @property
    def store_uri(self) -> str:
        """The store URI with the default applied and a bare directory turned into SQLite."""
        if self.uri is None:
            return f"sqlite:///{(DEFAULT_HOME / 'shipyard.db').resolve()}"
        if "://" not in self.uri:
            return f"sqlite:///{(Path(self.uri).expanduser() / 'shipyard.db').resolve()}"
        return self.uri

    @property
    def backend_kind(self) -> BackendKind:
        """Which family of adapters serves this store URI."""
        scheme = self.store_uri.split("://", 1)[0].lower()
        if scheme in ("http", "https"):
            return "http"
        if scheme.startswith("postgresql"):
            return "postgresql"
        return "sqlite"

    @property
    def artifact_root(self) -> str:
        """Where blobs go: the configured root, or a folder beside the SQLite file."""
        if self.artifacts:
            return self.artifacts
        if self.backend_kind == "sqlite":
            db_path = sqlite_path(self.store_uri)
            if db_path is not None:
                return str(db_path.parent / "artifacts")
        return str((DEFAULT_HOME / "artifacts").resolve())

    @property
    def actor(self) -> str:
        """Who acts in local mode: ``SHIPYARD_USER``, else the OS user."""
        if self.user:
            return self.user
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no passwd entry in some containers
            return "local"

    @property
    def predlog_root(self) -> Path:
        """Where the model server writes its prediction log."""
        if self.predlog:
            return Path(self.predlog).expanduser()
        if self.backend_kind == "sqlite":
            db_path = sqlite_path(self.store_uri)
            if db_path is not None:
                return db_path.parent / "predictions"
        return (DEFAULT_HOME / "predictions").resolve()

    @property
    def edge_keys_path(self) -> Path:
        """Where edge signing keys live."""
        if self.edge_keys:
            return Path(self.edge_keys).expanduser()
        if self.backend_kind == "sqlite":
            db_path = sqlite_path(self.store_uri)
            if db_path is not None:
                return db_path.parent / "edge-keys"
        return (DEFAULT_HOME / "edge-keys").resolve()

    @property
    def audit_anchor_path(self) -> Path:
        """Where the audit chain's signed head lives: outside the database, per store."""
        if self.audit_anchor:
            return Path(self.audit_anchor).expanduser()
        if self.backend_kind == "sqlite":
            db_path = sqlite_path(self.store_uri)
            if db_path is not None:
                return db_path.parent / "audit-anchor.json"
        tag = hashlib.sha256(self.store_uri.encode()).hexdigest()[:16]
        return (DEFAULT_HOME / f"audit-anchor-{tag}.json").resolve()


def sqlite_path(uri: str) -> Path | None:
    """Return the file path of a ``sqlite:///`` URI, or None for in-memory databases."""
    _, _, rest = uri.partition(":///")
    rest = rest.split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path("/" + rest.lstrip("/")) if uri.startswith("sqlite:////") else Path(rest)
