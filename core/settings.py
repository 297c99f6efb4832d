"""Typed settings for every Marquee process.

One ``Settings`` object is built at start-up (``Settings()`` reads ``MARQUEE_*``
environment variables) and passed down; nothing reads the environment at import
time, so tests can build as many independent settings objects as they need.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Workspace:
    """Paths of one Marquee workspace (``MARQUEE_HOME``).

    Every process that shares a workspace agrees on these paths, so the lake,
    the Feast repo and the MLflow store are found without further settings.
    """

    def __init__(self, home: Path) -> None:
        self.home = home.expanduser().resolve()

    @property
    def lake_dir(self) -> Path:
        """Parquet tables of raw facts (titles, profiles, watch events, exposures)."""
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
    """

    model_config = SettingsConfigDict(env_prefix="MARQUEE_", extra="ignore")

    home: Path = Path(".marquee")
    seed: int = 42
    feast_online: str = "sqlite"
    mlflow_tracking_uri: str | None = None
    database_url: str | None = None
    serving_url: str = "http://127.0.0.1:3000"
    registered_model: str = "marquee-recommender"
    jwt_secret: str = Field(default="dev-only-secret-change-me-please-0123456789", min_length=32)
    jwt_issuer: str = "marquee"
    jwt_audience: str = "marquee-clients"
    cdn_signing_key: str = Field(default="dev-only-cdn-key-change-me-please-0123456789", min_length=32)
    environment: str = "development"
    experiments_dir: Path | None = None

    @field_validator("feast_online")
    @classmethod
    def _check_online_store(cls, value: str) -> str:
        if value != "sqlite" and not value.startswith(("redis://", "rediss://")):
            raise ValueError(f"MARQUEE_FEAST_ONLINE must be 'sqlite' or a redis:// URL, got {value!r}")
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
    def database(self) -> str:
        """The SQLAlchemy URL of the API database in force."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.workspace.home / 'catalog.db'}"

    def check_production_secrets(self) -> None:
        """Refuse the built-in development secrets outside development."""
        if self.environment != "development" and (
            self.jwt_secret.startswith("dev-only") or self.cdn_signing_key.startswith("dev-only")
        ):
            raise ValueError(
                "MARQUEE_JWT_SECRET and MARQUEE_CDN_SIGNING_KEY must be set to real secrets "
                f"when MARQUEE_ENVIRONMENT={self.environment!r}"
            )
