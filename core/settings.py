"""Typed settings for every Marquee process.

One ``Settings`` object is built at start-up (``Settings()`` reads ``MARQUEE_*``
environment variables) and passed down; nothing reads the environment at import
time, so tests can build as many independent settings objects as they need.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import tempfile
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigurationError

logger = logging.getLogger(__name__)

#: The environment in which missing secrets are generated into the workspace instead of refusing to start.
DEVELOPMENT = "development"
#: Batch engines of the feature pipelines, training frames and the protocol's split (``MARQUEE_ENGINE``).
ENGINES = ("pandas", "spark")
#: File of the workspace holding generated secrets (mode 0600).
SECRETS_FILE = "secrets.json"
#: Secrets generated per workspace when not configured (setting name -> environment variable).
GENERATED_SECRETS = {"jwt_secret": "MARQUEE_JWT_SECRET", "cdn_signing_key": "MARQUEE_CDN_SIGNING_KEY"}
#: Values that were once published as defaults: never accepted, in any environment.
PUBLISHED_SECRETS = frozenset(
    {"dev-only-secret-change-me-please-0123456789", "dev-only-cdn-key-change-me-please-0123456789"}
)


def workspace_secrets(home: Path) -> dict[str, str]:
    """The workspace's generated secrets, created on first use (random, readable by the owner only).

    Several processes may start together on one workspace (API workers, the edge server):
    the file is written under a temporary name with mode 0600 and linked into place, which
    fails if another process won the race; every process then reads the same file.
    """
    home = home.expanduser().resolve()
    path = home / SECRETS_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        values = {name: secrets.token_urlsafe(48) for name in GENERATED_SECRETS}
        fd, tmp = tempfile.mkstemp(prefix=".secrets-", dir=home)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(values, handle)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
                logger.warning("generated development secrets in %s (set MARQUEE_JWT_SECRET to override)", path)
        finally:
            os.unlink(tmp)
    stored = json.loads(path.read_text())
    return {name: str(stored[name]) for name in GENERATED_SECRETS}


class Workspace:
    """Paths of one Marquee workspace (``MARQUEE_HOME``).

    Every process that shares a workspace agrees on these paths, so the lake,
    the Feast repo and the MLflow store are found without further settings.
    """

    def __init__(self, home: Path) -> None:
        self.home = home.expanduser().resolve()

    @property
    def lake_dir(self) -> Path:
        """Delta Lake tables of raw facts (titles, profiles, watch events, exposures), unless ``lake_uri`` is set."""
        return self.home / "lake"

    @property
    def feast_dir(self) -> Path:
        """The generated Feast repo: ``feature_store.yaml`` and feature tables."""
        return self.home / "feast"

    @property
    def mlflow_dir(self) -> Path:
        """The embedded MLflow backend (SQLite) and artifact store."""
        return self.home / "mlflow"

    @property
    def models_dir(self) -> Path:
        """Scratch space for model files before they are logged to MLflow."""
        return self.home / "models"

    @property
    def media_dir(self) -> Path:
        """Packaged media (``media.package``), served by the origin; ``edges.json`` names the running edges."""
        return self.home / "media"

    @property
    def run_dir(self) -> Path:
        """Pid files and logs of processes started by ``marquee demo``."""
        return self.home / "run"

    def ensure(self) -> Workspace:
        """Create the workspace folders that do not exist yet."""
        for path in (self.home, self.lake_dir, self.feast_dir, self.mlflow_dir, self.models_dir, self.run_dir):
            path.mkdir(parents=True, exist_ok=True)
        return self


class MissingSecretError(ConfigurationError, ValueError):
    """A deployment outside development started without its secrets (the CLI says so in one line)."""


class Settings(BaseSettings):
    """Settings shared by the CLI, the model server and the API.

    Attributes:
        home: the workspace folder (``MARQUEE_HOME``); default ``./.marquee``.
        seed: default random seed for generators, splits and training.
        feast_online: ``sqlite`` (embedded default) or a ``redis://host:port`` URL.
        mlflow_tracking_uri: MLflow tracking URI; default a SQLite file in the workspace.
        database_url: the API's OLTP database; default a SQLite file in the workspace.
        serving_url: where the API finds the BentoML model server.
        experiments_dir: folder of experiment definitions (YAML); default the
            definitions shipped in the ``experiments`` package.
        engine: the batch engine of the feature pipelines, the training frames and the
            protocol's split: ``pandas`` (embedded default, one process) or ``spark``.
        spark_master: the Spark master when ``engine`` is ``spark`` (``local[2]``, ``spark://host:7077``...).
        spark_driver_memory: the Spark driver's heap (a local master runs everything in the driver).
    """

    model_config = SettingsConfigDict(env_prefix="MARQUEE_", extra="ignore")

    home: Path = Path(".marquee")
    seed: int = 42
    feast_online: str = "sqlite"
    mlflow_tracking_uri: str | None = None
    database_url: str | None = None
    serving_url: str = "http://127.0.0.1:3000"
    registered_model: str = "marquee-recommender"
    jwt_secret: str = Field(default="", description="HS256 key of access/refresh tokens (>= 32 chars)")
    jwt_issuer: str = "marquee"
    jwt_audience: str = "marquee-clients"
    cdn_signing_key: str = Field(default="", description="HMAC key of signed segment URLs (>= 32 chars)")
    environment: str = DEVELOPMENT
    experiments_dir: Path | None = None
    #: Addresses or networks (comma-separated, e.g. ``10.0.0.0/8,127.0.0.1``) of reverse proxies whose
    #: ``X-Forwarded-For`` is believed; empty: the peer address is the client.
    trusted_proxies: str = ""
    #: Where login limits live, shared by every worker and replica (``redis://host:port/db``); unset:
    #: process memory, which only development accepts (``catalog_api.security.rate_limit``).
    rate_limit_url: str | None = None
    #: Where accepted watch events, exposures and playback reports go besides the API database:
    #: unset (embedded default) the database with its journal and one exporter; ``nats://host:4222``
    #: a NATS JetStream stream read by durable consumers (``core.bus``, docs/event-bus.md).
    event_bus: str | None = None
    #: Subject and stream prefix on the bus (``<prefix>.events.watch``); one per deployment or test.
    event_bus_prefix: str = "marquee"
    #: Where the lake's tables live: unset, the workspace's ``lake`` folder; or an object-store URI
    #: (``s3://bucket/lake``, ``gs://…``, ``az://…``) that ``core.lake`` hands to Delta Lake.
    lake_uri: str | None = None
    #: Credentials and options of that object store (``MARQUEE_LAKE_STORAGE_OPTIONS``, a JSON object), as
    #: Delta Lake's ``storage_options``; S3 needs a commit-safe setting (``conditional_put``) for several writers.
    lake_storage_options: dict[str, str] = Field(default_factory=dict)
    #: How long files dropped from a lake table (by compaction or erasure) and its old log entries are kept
    #: before ``vacuum`` deletes them: readers of an older snapshot and incremental readers need them that long.
    lake_retention_hours: float = Field(default=24.0, ge=0)
    ranker_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="processes that train the neural ranker together (torch DDP over gloo; "
        "`marquee train --ranker-workers` overrides it); 1 trains it in the training process",
    )
    #: Batch engine (``MARQUEE_ENGINE``): ``pandas`` or ``spark`` (see :data:`ENGINES`).
    engine: str = "pandas"
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"

    @field_validator("jwt_secret", "cdn_signing_key")
    @classmethod
    def _check_secret(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("secrets must be at least 32 characters long")
        if value in PUBLISHED_SECRETS:
            raise ValueError("this secret was published with Marquee's source code; generate your own")
        return value

    @model_validator(mode="after")
    def _fill_development_secrets(self) -> Settings:
        # Development without configured secrets: random ones kept in the workspace, so every process of
        # the workspace agrees on them and nothing can be forged from the source. Elsewhere they stay empty
        # and ``check_production_secrets`` refuses to start.
        missing = [name for name in GENERATED_SECRETS if not getattr(self, name)]
        if missing and self.environment == DEVELOPMENT:
            stored = workspace_secrets(self.home)
            for name in missing:
                setattr(self, name, stored[name])
        return self

    @field_validator("engine")
    @classmethod
    def _check_engine(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ENGINES:
            raise ValueError(f"MARQUEE_ENGINE must be one of {', '.join(ENGINES)}, got {value!r}")
        return value

    @field_validator("feast_online")
    @classmethod
    def _check_online_store(cls, value: str) -> str:
        if value != "sqlite" and not value.startswith(("redis://", "rediss://")):
            raise ValueError(f"MARQUEE_FEAST_ONLINE must be 'sqlite' or a redis:// URL, got {value!r}")
        return value

    @field_validator("event_bus")
    @classmethod
    def _check_event_bus(cls, value: str | None) -> str | None:
        if value and not value.startswith(("nats://", "tls://")):
            raise ValueError(f"MARQUEE_EVENT_BUS must be a nats:// or tls:// URL (or unset), got {value!r}")
        return value or None

    @field_validator("event_bus_prefix")
    @classmethod
    def _check_bus_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
            raise ValueError(f"MARQUEE_EVENT_BUS_PREFIX must be 1-64 letters, digits, '_' or '-', got {value!r}")
        return value

    @cached_property
    def workspace(self) -> Workspace:
        """The workspace paths derived from ``home``."""
        return Workspace(self.home)

    @property
    def mlflow_uri(self) -> str:
        """The tracking URI in force (setting, or the workspace's SQLite store)."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.workspace.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> str:
        """Where the embedded MLflow store keeps artifacts."""
        return (self.workspace.mlflow_dir / "artifacts").as_uri()

    @property
    def lake_location(self) -> str | Path:
        """The lake in force: the object-store URI when set, else the workspace's folder."""
        return self.lake_uri or self.workspace.lake_dir

    @property
    def database(self) -> str:
        """The SQLAlchemy URL of the API database in force."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.workspace.home / 'catalog.db'}"

    def check_production_secrets(self) -> None:
        """Refuse to start without configured secrets (only development generates them)."""
        missing = [env for name, env in GENERATED_SECRETS.items() if not getattr(self, name)]
        if missing:
            raise MissingSecretError(
                f"{' and '.join(missing)} must be set (at least 32 random characters) "
                f"when MARQUEE_ENVIRONMENT={self.environment!r}; only development generates them"
            )
