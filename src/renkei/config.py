"""Settings from RENKEI_* environment variables; production refuses unsafe configuration."""

from __future__ import annotations

import stat
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")
# The print templates live beside schemas/ at the repository root, one per sheet and version.
DEFAULT_FORMS_DIR = Path(__file__).resolve().parents[2] / "forms"
# The sheets' JSON Schemas, loaded into the registry at start-up.
DEFAULT_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class UnsafeConfiguration(RuntimeError):
    """Raised when a production configuration would run with a default or missing secret."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RENKEI_", env_file=None, extra="ignore")

    environment: Environment = Environment.development
    database_url: str = ""
    var_dir: Path = DEFAULT_VAR_DIR
    # The key file holds the KEKs, the blind-index key, the audit key and the token secret.
    # In development it is created on first start; in production it must already exist.
    key_file: Path | None = None
    forms_dir: Path = DEFAULT_FORMS_DIR
    schemas_dir: Path = DEFAULT_SCHEMAS_DIR

    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "testserver"])
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8000", "http://localhost:8000"]
    )
    public_url: str = "http://127.0.0.1:8000"

    token_issuer: str = "renkei"
    token_audience: str = "renkei-api"
    access_token_minutes: int = Field(default=10, ge=1, le=15)
    refresh_token_days: int = Field(default=14, ge=1, le=90)
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=24 * 14)
    require_2fa: Literal["admins", "all"] = "admins"

    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)
    login_ip_max_attempts: int = Field(default=30, ge=1)
    login_ip_window_minutes: int = Field(default=5, ge=1)

    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    break_glass_minutes: int = Field(default=120, ge=5, le=24 * 60)
    # Break-the-glass must follow an exact lookup of the same patient by the same person this recently.
    break_glass_lookup_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Signed audit checkpoints live outside the database (default: <var_dir>/audit-checkpoints).
    audit_checkpoint_dir: Path | None = None
    audit_checkpoint_every: int = Field(default=1000, ge=0)
    ack_overdue_hours: int = Field(default=24, ge=1)

    # Live notifications (renkei.notify): websocket tickets, heartbeats and the bounds that keep one
    # client from holding memory or the event hub hostage.
    ws_ticket_seconds: int = Field(default=30, ge=5, le=30)
    ws_auth_timeout_seconds: float = Field(default=5.0, gt=0, le=5.0)
    ws_heartbeat_seconds: float = Field(default=20.0, ge=0.2, le=60.0)
    ws_max_connections_per_user: int = Field(default=5, ge=1, le=50)
    ws_max_connections: int = Field(default=10_000, ge=1)
    ws_send_queue: int = Field(default=256, ge=8, le=10_000)
    ws_max_message_bytes: int = Field(default=4096, ge=256, le=65_536)
    ws_replay_page: int = Field(default=500, ge=10, le=5000)
    # The hub also polls the outbox this often, so an event whose wake-up was lost is late, never lost.
    notify_poll_seconds: float = Field(default=2.0, ge=0.05, le=60.0)
    # How long an access decision is reused while fanning out. Events that change access (consent, team,
    # break-the-glass) clear it at once; this bounds changes that come by the calendar alone.
    notify_decision_ttl_seconds: float = Field(default=60.0, ge=0.0, le=300.0)

    # Password of every demo account (`renkei demo`); the documented default when unset.
    demo_password: str | None = None
    log_level: str = "INFO"
    cookie_secure: bool = False

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.var_dir / 'renkei.db').as_posix()}"
        if self.key_file is None:
            self.key_file = self.var_dir / "keys.json"
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == Environment.production

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def sqlalchemy_url(self) -> str:
        # psycopg 3 is the only PostgreSQL driver we ship; accept the common spellings.
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    def check_production(self) -> None:
        """Refuse to run production with development defaults."""
        if not self.is_production:
            return
        problems: list[str] = []
        if self.key_file is None or not Path(self.key_file).is_file():
            problems.append("RENKEI_KEY_FILE must point to an existing key file (run `renkei keys init`)")
        elif stat.S_IMODE(Path(self.key_file).stat().st_mode) & 0o077:
            problems.append("RENKEI_KEY_FILE must be readable by its owner only (chmod 600 or 400)")
        if not self.cookie_secure:
            problems.append("RENKEI_COOKIE_SECURE must be true in production")
        if "testserver" in self.allowed_hosts:
            problems.append("RENKEI_ALLOWED_HOSTS must list the real host names")
        if self.public_url.startswith("http://"):
            problems.append("RENKEI_PUBLIC_URL must be https in production")
        if problems:
            raise UnsafeConfiguration("; ".join(problems))


def get_settings() -> Settings:
    return Settings()
