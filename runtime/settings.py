"""Operator settings, from the environment (prefix ``PHONE_ACTIONS_``) or a ``.env`` file."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Self, Union, get_args, get_origin

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from runtime.errors import ConfigurationError
from runtime.sandbox.shared.contract import SandboxLimits
from runtime.wording import plain

__all__ = ["HOST_ENTRY_FORMS", "Settings", "host_entry_problem", "load_settings"]


class Settings(BaseSettings):
    """Everything an operator can set. Each field is documented in ``docs/configuration.md``."""

    model_config = SettingsConfigDict(
        env_prefix="PHONE_ACTIONS_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        allow_inf_nan=False,  # "nan" and "inf" are no durations, counts or days
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
    recordings_dir: Path | None = Field(
        default=None,
        description="Folder for the recordings of tenants with record = true "
        "(one JSON Lines file per tenant, day and process); default: data_dir/recordings.",
    )
    default_sender: str = Field(
        default="outbox",
        description="Provider that serves as the default sender: for tenants whose provider is "
        "'default' and for fallbacks. The outbox (the embedded default) stores messages and "
        "sends nothing; production sets a provider that reaches phones.",
    )
    default_sender_settings: dict[str, Any] = Field(
        default_factory=dict,
        description="The default sender's provider settings, as JSON "
        '(e.g. {"from_number": "+15017122661"}).',
    )
    default_sender_credentials_env: dict[str, str] = Field(
        default_factory=dict,
        description="The default sender's credentials: a JSON object naming, for each "
        'credential field, the environment variable that holds it (e.g. {"auth_token": '
        '"PLATFORM_TWILIO_AUTH_TOKEN"}).',
    )
    default_sender_cap: int = Field(
        default=100,
        ge=1,
        description="Lifetime cap of messages per tenant through the default sender, whichever "
        "provider it is (Auth0's is 100).",
    )
    store_timeout: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="Connect, statement and lock timeout of each database call, seconds; it "
        "must fit the delivery budget.",
    )
    store_workers: int = Field(
        default=16,
        ge=1,
        le=64,
        description="Threads of the pipeline's own database executor (started on demand).",
    )
    tenant_cache_size: int = Field(
        default=10_000,
        ge=1,
        description="Tenants the service holds in memory (least recently used leave first).",
    )
    idempotency_grace: float = Field(
        default=60.0,
        ge=0,
        description="How long past the delivery budget a claimed idempotency key without a "
        "report is still waited for; older, it is answered 'outcome_unknown' at once.",
    )
    idempotency_retention_days: float = Field(
        default=7.0,
        ge=1,
        le=3650,
        description="Days an idempotency key's record is kept (its claim and stored report); "
        "older ones are deleted every 10 minutes, and the key may then be used again.",
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
    sandbox_timeout: float = Field(
        default=5.0, gt=0, le=20, description="Wall-clock budget of one tenant action, seconds."
    )
    sandbox_memory_mb: int = Field(
        default=256, ge=32, description="Address-space limit of a sandbox worker, MiB."
    )
    sandbox_max_workers: int = Field(
        default=64, ge=1, description="Sandbox worker processes alive at once, all tenants."
    )
    sandbox_worker_invocations: int = Field(
        default=10_000,
        ge=1,
        description="Invocations after which a sandbox worker is replaced by a fresh one.",
    )
    sandbox_allow_http_hosts: list[str] = Field(
        default_factory=list,
        description="host or host:port that actions may call over plain http and that are "
        "exempt from the public-address rule (local fakes in development and tests).",
    )
    sandbox_require_seccomp: bool = Field(
        default=False, description="Refuse to start the sandbox where seccomp is unavailable."
    )
    sandbox_namespaces: bool = Field(
        default=True,
        description="Give each sandbox worker its own mount namespace (an empty read-only "
        "root) and network namespace (no interfaces); needs root.",
    )
    sandbox_uid_base: int = Field(
        default=100_000,
        ge=1000,
        le=2**31 - 2**24,
        description="First uid of the range that sandbox workers run as, one uid per tenant "
        "(when the service runs as root); no other user should own uids in the range.",
    )
    sandbox_uid_count: int = Field(
        default=65_536,
        ge=1,
        le=2**24,
        description="Number of uids in the sandbox range; at least the number of tenants "
        "that may have workers at once (sandbox_max_workers).",
    )

    @model_validator(mode="after")
    def _uids_for_every_worker(self) -> Self:
        """Each tenant with workers holds a uid of the range (docs/sandbox.md): a range smaller
        than the workers would leave a tenant without one."""
        if self.sandbox_uid_count < self.sandbox_max_workers:
            raise ValueError(
                f"PHONE_ACTIONS_SANDBOX_UID_COUNT ({self.sandbox_uid_count}) must be at least "
                f"PHONE_ACTIONS_SANDBOX_MAX_WORKERS ({self.sandbox_max_workers}): each tenant "
                "with sandbox workers needs a uid of its own"
            )
        return self

    sandbox_cgroup_dir: str = Field(
        default="auto",
        min_length=1,
        description="Delegated cgroup v2 folder for per-worker memory and pids limits: 'auto' "
        "(phone-actions at the top of the cgroup2 mount), 'off', or a path.",
    )

    outbound_allow_hosts: list[str] = Field(
        default_factory=list,
        description="host (any port), host:port or [v6]:port that the service's own calls to "
        "URLs tenants chose (log-stream sinks, usage-trigger webhooks) may reach over plain "
        "http and at any address, private ones included: local fakes in tests, never "
        "production.",
    )

    @field_validator(
        "sandbox_allow_http_hosts", "outbound_allow_hosts", "log_stream_allow_http_hosts"
    )
    @classmethod
    def _http_hosts(cls, value: list[str]) -> list[str]:
        """``host``, ``host:port`` or ``[v6]:port``: a URL or a typo is refused, not read as
        a host name that never matches (the exemption would silently not apply)."""
        for entry in value:
            problem = host_entry_problem(entry)
            if problem:
                raise ValueError(f"{entry!r}: {problem} ({HOST_ENTRY_FORMS})")
        return value

    def sandbox_limits(self) -> SandboxLimits:
        """The sandbox limits these settings ask for (the rest keep their defaults)."""
        return SandboxLimits(
            timeout=self.sandbox_timeout,
            memory_bytes=self.sandbox_memory_mb * 1024 * 1024,
            max_invocations_per_worker=self.sandbox_worker_invocations,
        )

    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 random bytes that seals what the runtime stores (queued "
        "retries with their code); several comma-separated, newest first, to rotate. Default: "
        "the file master.key in data_dir, made (mode 0600) on the first start.",
    )
    signing_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 or more random bytes that signs the Management API's tokens "
        "(HS256); several comma-separated, newest first, to rotate. Default: the file "
        "signing.key in data_dir, made (mode 0600) on the first start.",
    )
    notification_retry_delays: list[float] = Field(
        default_factory=lambda: [10.0, 20.0, 40.0, 80.0, 120.0],
        min_length=1,
        max_length=10,
        description="Seconds before each re-run of an action that called "
        "api.notification.retry; one entry per retry (Auth0 retries up to 5 times).",
    )
    notification_retry_max_pending: int = Field(
        default=100,
        ge=1,
        description="Deliveries per tenant that may wait for a retry at once; beyond it a "
        "retry request is treated as a last failure (the fallback rules apply).",
    )
    job_workers: int = Field(
        default=8, ge=1, le=256, description="Queued jobs (retries) one node runs at once."
    )
    job_poll_interval: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="Seconds between two looks for due jobs in the database (a job this node "
        "queues wakes it at once).",
    )

    @field_validator("data_dir")
    @classmethod
    def _data_dir_is_a_folder(cls, value: Path) -> Path:
        # made on first use when missing; a file there would fail later, naming another path
        if value.exists() and not value.is_dir():
            raise ValueError(f"{str(value)!r} is a file, not a folder")
        return value

    @field_validator("notification_retry_delays")
    @classmethod
    def _retry_delays(cls, value: list[float]) -> list[float]:
        for number, delay in enumerate(value, 1):
            if not 0 < delay <= 3600:
                raise ValueError(f"delay {number} must be more than 0 and at most 3600 seconds")
        return value

    log_retention_days: float = Field(
        default=30.0,
        gt=0,
        le=3650,
        description="Days the stored log (GET /api/v2/logs, log streams) keeps an event; the "
        "JSON Lines file is not trimmed (rotate it with logrotate).",
    )
    log_stream_batch_size: int = Field(
        default=100, ge=1, le=1000, description="Events per request to a log stream's sink."
    )
    log_stream_max_backoff: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Longest wait, seconds, between two tries of a failing log stream sink "
        "(the wait doubles from 1 s).",
    )
    log_stream_suspend_after: float = Field(
        default=86_400.0,
        gt=0,
        description="Seconds a log stream's sink may fail without a success before the stream "
        "is suspended (PATCH status active resumes it where it stopped).",
    )
    log_stream_allow_http_hosts: list[str] = Field(
        default_factory=list,
        description="The former name of outbound_allow_hosts, still read (added to it).",
    )

    def outbound_hosts(self) -> list[str]:
        """``outbound_allow_hosts`` with the entries of its former name."""
        return [*self.outbound_allow_hosts, *self.log_stream_allow_http_hosts]

    otp_length: int = Field(
        default=6, ge=4, le=10, description="Digits of a Verify API code (docs/verify.md)."
    )
    otp_ttl: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Seconds a Verify API code stays valid after it was sent.",
    )
    otp_max_attempts: int = Field(
        default=5, ge=1, le=20, description="Wrong codes a Verify API code survives: then dead."
    )

    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://host:port/db, rediss://, unix://) for the rate "
        "limits, so that several nodes enforce one set; default: limits kept in this process.",
    )
    redis_timeout: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="Longest wait for Redis on one request's rate limits, seconds; a Redis "
        "that does not answer costs at most this.",
    )
    limits_on_redis_error: Literal["closed", "open"] = Field(
        default="closed",
        description="When Redis fails or times out: 'closed' refuses the request "
        "(limits_unavailable, nothing sent), 'open' sends it without rate limits.",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    public_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="Where providers reach this service (https://phone.example.com): set, "
        "outgoing messages ask for delivery receipts at {public_base_url}/api/v2/receipts/...",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Bearer token Prometheus presents to GET /metrics; unset, /metrics is off.",
    )

    strict_plugins: bool = Field(
        default=False, description="Fail at start when a third-party plugin cannot be loaded."
    )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'phone-actions.sqlite3'}"

    @property
    def resolved_recordings_dir(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"

    @property
    def resolved_log_file(self) -> Path:
        return self.log_file or self.data_dir / "events.jsonl"


_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


HOST_ENTRY_FORMS = "want host, host:port or [ipv6]:port"
"""What :func:`host_entry_problem` accepts, as its errors say it."""


def host_entry_problem(entry: str) -> str | None:
    """Why ``entry`` is not ``host``, ``host:port`` or ``[v6]:port``, else None: the rule of
    the ``*_allow_hosts`` settings, and of ``test-action --allow-host``."""
    text = entry.strip().lower()
    if "/" in text:
        return "a URL or a path, not a host"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return "unbalanced brackets"
        port = rest[1:] if rest else None
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "not an IPv6 address in brackets"
    else:
        host, colon, port_text = text.partition(":")
        port = port_text if colon else None
        if not host or len(host) > 253:
            return "no host"
        if not all(_HOST_LABEL.match(label) for label in host.removesuffix(".").split(".")):
            return "not a host name or IPv4 address"
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        return f"port {port!r} is not a number from 1 to 65535"
    return None


def load_settings() -> Settings:
    """Settings from the environment and ``.env``; a bad value, or a bad line of ``.env``, is
    a :class:`ConfigurationError` naming the variable (and the file's line), not a pydantic
    traceback."""
    from runtime.env_file import check_env_file

    try:
        check_env_file()
        return Settings()
    except (UnicodeDecodeError, OSError) as exc:  # the .env file: not UTF-8, or unreadable
        reason = (
            f"not UTF-8 text (byte {exc.start + 1}: {exc.reason})"
            if isinstance(exc, UnicodeDecodeError)
            else exc.strerror or str(exc)
        )
        raise ConfigurationError(f"invalid settings: .env file: {reason}") from None
    except SettingsError as exc:  # a list or object setting that is not JSON
        raise ConfigurationError(f"invalid settings: {_settings_error(exc)}") from None
    except ValidationError as exc:
        problems = "; ".join(map(_problem, exc.errors(include_input=False)))
        raise ConfigurationError(f"invalid settings: {problems}") from None


_CONTAINER_TYPES = {"dict_type", "list_type", "tuple_type", "set_type", "frozen_set_type"}


def _problem(error: ErrorDetails) -> str:
    """One validation error, naming the variable; in a list or object setting (JSON in the
    environment), the entry, and the JSON expected rather than pydantic's (or TOML's) words."""
    if not error["loc"]:  # a check of several settings names them itself
        return plain(error["msg"])
    field, *inner = error["loc"]
    variable = f"PHONE_ACTIONS_{str(field).upper()}"
    line = _env_file_line(variable)  # a value from .env: its line (several may set it)
    where = f"{line}: {variable}" if line else variable
    for part in inner:  # an entry of a JSON list or object
        where += f": entry {part + 1}" if isinstance(part, int) else f': "{part}"'
    info = Settings.model_fields.get(str(field))
    if info is not None and not inner and error["type"] in _CONTAINER_TYPES:
        return f"{where}: should be {_json_shape(info.annotation)}"
    return f"{where}: {error['msg']}"


def _env_file_line(variable: str) -> str | None:
    """``<file> line <n>`` when ``variable``'s value came from ``.env`` (the process
    environment wins over the file), else None."""
    import os

    from runtime.env_file import env_file_line

    if any(name.upper() == variable for name in os.environ):
        return None
    try:
        return env_file_line(variable)
    except (UnicodeDecodeError, OSError):
        return None


_SETTINGS_ERROR = re.compile(r'value for field "(\w+)" from source "(\w+)"')


def _settings_error(exc: SettingsError) -> str:
    """pydantic-settings' error for a value it decodes as JSON (every list or object setting),
    said without its internals: the variable, the ``.env`` line when it is the file's, the
    JSON expected, and what is wrong with it."""
    from runtime.env_file import env_file_line

    match = _SETTINGS_ERROR.search(str(exc))
    if match is None or match.group(1) not in Settings.model_fields:
        first = str(exc.__cause__ or exc).strip().splitlines()
        return f"a setting cannot be read: {first[0] if first else type(exc).__name__}"
    field, source = match.groups()
    variable = f"PHONE_ACTIONS_{field.upper()}"
    where = ""
    if source == "DotEnvSettingsSource":
        try:
            line = env_file_line(variable)
        except (UnicodeDecodeError, OSError):
            line = None
        where = f"{line or '.env file'}: "
    cause = exc.__cause__
    if isinstance(cause, json.JSONDecodeError):
        reason = f"{cause.msg[:1].lower()}{cause.msg[1:]} at character {cause.pos + 1}"
    else:
        first = str(cause or exc).strip().splitlines()
        reason = first[0] if first else type(cause or exc).__name__
    shape = _json_shape(Settings.model_fields[field].annotation)
    return f"{where}{variable}: not valid JSON (expected {shape}): {reason}"


def _json_shape(annotation: Any) -> str:
    """The JSON a setting of this type is written as, with an example."""
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    origin = get_origin(annotation)
    if origin in (Union, UnionType) and len(args) == 1:  # X | None
        return _json_shape(args[0])
    if origin in (list, tuple, set, frozenset):
        numbers = bool(args) and all(arg in (int, float) for arg in args if arg is not Ellipsis)
        return "a JSON list like [1, 2.5]" if numbers else 'a JSON list like ["a", "b"]'
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return 'a JSON object like {"name": "value"}'
    return "JSON"
