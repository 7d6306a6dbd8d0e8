"""Operator settings, from the environment (prefix ``PHONE_ACTIONS_``) or a ``.env`` file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything an operator can set. Each field is documented in ``docs/configuration.md``."""

    model_config = SettingsConfigDict(
        env_prefix="PHONE_ACTIONS_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path("data"), description="Folder for the SQLite database, outbox and logs."
    )
    tenants_file: Path = Field(
        default=Path("tenants.toml"), description="TOML file that configures the tenants."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the shared database (idempotency records); "
        "default: SQLite in data_dir. Use PostgreSQL when several nodes share the work.",
    )
    log_file: Path | None = Field(
        default=None, description="JSON Lines log of events; default: data_dir/events.jsonl."
    )
    default_sender: str = Field(
        default="outbox", description="Provider used as the fallback default sender."
    )
    outbox_cap: int = Field(
        default=100, ge=0, description="Lifetime cap of messages per tenant in the outbox."
    )
    attempt_timeout: float = Field(
        default=10.0, gt=0, le=60, description="Time budget of one provider attempt, seconds."
    )
    idempotency_wait: float = Field(
        default=15.0,
        ge=0,
        description="How long a request waits for a concurrent request with the same "
        "idempotency key to finish before it is rejected, seconds.",
    )
    strict_plugins: bool = Field(
        default=False, description="Fail at start when a third-party plugin cannot be loaded."
    )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'phone-actions.sqlite3'}"

    @property
    def resolved_log_file(self) -> Path:
        return self.log_file or self.data_dir / "events.jsonl"
