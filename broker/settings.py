"""The broker's configuration: one typed class, read from ``BROKER_*`` environment variables
(each described in docs/settings.md).

Nothing here is built at import time; the application factory and the CLI call
:func:`load_settings` and pass the result down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from broker.core.outbound import parse_allow_list

#: Values that mean "nobody set this": refused outside ``--demo``.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "placeholder", "todo", "xxx", "password", "example"}
)

#: The smallest pseudonym key we accept, in bytes (HMAC-SHA256 wants at least 32).
MIN_SECRET_BYTES = 32


class Settings(BaseSettings):
    """Everything an operator can set. Units are in the names."""

    model_config = SettingsConfigDict(env_prefix="BROKER_", extra="ignore")

    public_url: str = "http://127.0.0.1:8000"
    """The URL partners use. Token audiences are built from it, never from a Host header."""

    database_url: str = "sqlite:///var/broker.db"
    policy_engine: Literal["embedded", "opa"] = "embedded"
    opa_url: str | None = None
    agreements_dir: Path = Path("agreements")
    """Signed agreements: ``register/``, ``isa/``, ``revocations/``, ``keys/`` beneath it."""
    policy_dir: Path = Path("policies")
    """The Rego policy (``*.rego``; ``*_test.rego`` are its unit tests)."""
    policy_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    """How often the agreements directory is checked for changes."""
    opa_timeout_seconds: float = Field(default=0.5, gt=0, le=10)
    keys_dir: Path = Path("var/keys")
    """Holds the broker's own signing keys (``token/*.pem``). Kept outside the database."""
    pseudonym_key_file: Path = Path("var/keys/pseudonym.key")
    """A secret of at least 32 bytes that keys the HMAC pseudonyms of people."""

    demo: bool = False
    """Set by ``broker serve --demo``: demo keys and generated secrets are accepted."""
    demo_dir: Path = Path("var/demo")
    """Where the demo keeps its database, secrets, client keys and copy of the agreements."""

    token_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    assertion_max_lifetime_seconds: int = Field(default=300, ge=30, le=3600)
    clock_skew_seconds: int = Field(default=30, ge=0, le=300)
    assertion_max_bytes: int = Field(default=8192, ge=1024, le=65536)
    request_body_max_bytes: int = Field(default=65536, ge=1024)
    http_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """A request's line and headers must arrive within this long of the connection opening (or
    of its first byte on a kept-alive connection), else 408 and the connection is closed."""
    http_body_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    """A request's body must arrive within this long of its headers, else 408 and closed."""
    http_headers_max_bytes: int = Field(default=16384, ge=4096, le=1_048_576)
    """The request line and headers together; larger gets 431 and the connection is closed."""
    # exchanges
    bindings_file: Path | None = None
    """Which source system serves each dataset (adapters/bindings format). The demo sets its own."""
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    rate_limit_overrides: dict[str, float] = Field(default_factory=dict)
    """Per-client rates, e.g. ``BROKER_RATE_LIMIT_OVERRIDES='{"bench-client": 5000}'``."""
    redis_url: str | None = None
    """Where every instance counts per-client requests together (``redis://host:6379/0``): the
    limit is then exact across instances and processes. Unset: each process enforces its share
    (rate and burst divided by ``workers``), and instances behind a load balancer each allow the
    whole rate. Redis unreachable: 503 with ``Retry-After`` and not ready, never unlimited."""
    verify_limit_per_record: int = Field(default=5, ge=1)
    """Verification answers about one record at the source, across every party and flow."""
    verify_limit_per_party_flow_record: int = Field(default=5, ge=1)
    """Of those, the answers to one party under one agreement flow."""
    verify_limit_window_seconds: int = Field(default=86400, ge=60)
    idempotency_ttl_seconds: int = Field(default=600, ge=10, le=86400)
    preview_ttl_seconds: int = Field(default=7 * 86400, ge=60)
    """How long an exchange held for the citizen's preview waits before it expires."""
    attestation_validity_seconds: int = Field(default=86400, ge=60, le=90 * 86400)
    """How long an attestation (``mode: attest``) is valid; its status can revoke it sooner."""
    consent_backdate_max_days: int = Field(default=90, ge=0, le=366)
    """A consent given before it is recorded (on paper, ``given_at`` with an evidence reference)
    may be recorded at most this many days later."""

    # audit log
    audit_checkpoint_every_entries: int = Field(default=1000, ge=1)
    audit_checkpoint_every_seconds: float = Field(default=60.0, gt=0)
    audit_retention_days: int = Field(default=2920, ge=1)
    """Personal values of log entries (pseudonym, user id, justification, case reference) are
    redacted after this many days; the entries and every proof stay (8 years by default)."""
    audit_redaction_interval_seconds: float = Field(default=3600.0, gt=0)
    job_lease_seconds: float = Field(default=15.0, ge=3, le=600)
    """Periodic jobs (checkpoints and redaction, outbox delivery) run on one instance at a time:
    the one holding the job's lease, renewed every third of this; when it dies another takes
    over after at most this long (broker/db/leases.py)."""
    # Provider notifications (webhook outbox) and the identity providers of parties.
    webhook_max_attempts: int = Field(default=12, ge=1, le=100)
    webhook_backoff_base_seconds: float = Field(default=5.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    outbox_keep_days: int = Field(default=30, ge=1, le=3650)
    """Delivered provider notifications are deleted this long after delivery (the audit log keeps
    the exchange itself); pending and failed ones are kept until delivered or retried."""
    webhook_coalesce_ms: float = Field(default=50.0, ge=0, le=1000)
    """After the pipeline wakes the delivery worker, it waits this long before claiming, so that
    under load one cycle (two write transactions) delivers the notifications of many exchanges;
    0: claim at once. 50 ms measured best (bench/notify_identity_bench.py)."""
    idp_jwks_cache_seconds: float = Field(default=300.0, ge=0)
    idp_jwks_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    id_token_max_age_seconds: int = Field(default=600, ge=30, le=3600)
    """An ID token must have been issued (``iat``) within this many seconds."""
    outbound_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Loopback, private, link-local, CGNAT and metadata addresses the broker may still connect
    to (webhooks, identity providers' key sets, OPA): comma-separated addresses, networks or
    host names, each optionally with a port (``10.20.0.0/16,opa:8181,[::1]:8443``). Empty: none
    (broker/core/outbound.py)."""

    log_level: str = "INFO"
    log_json: bool = True

    # --- serving ---
    workers: int = Field(default=1, ge=1, le=64)
    """Server processes ``broker serve`` runs (``--workers`` overrides it). Each process enforces
    its share of every per-client rate (rate and burst divided by this number, at least one
    request), so the configured rate stays a ceiling whichever process a request reaches."""
    pin_workers: bool = False
    """With several server processes, keep each on a core of its own (Linux CPU affinity; the
    first free core of those the broker may use, one per process until they run out). Fewer
    hand-offs between cores on every request: for a host that runs the broker alone."""
    worker_threads: int = Field(default=8, ge=1, le=256)
    """Threads per process for blocking work (database, policy engine). Small on purpose: more
    threads than cores mostly add contention for Python's GIL (see docs/performance.md)."""

    # --- governance console (/console) ---
    console_session_idle_seconds: int = Field(default=1800, ge=60, le=86400)
    """A console session ends after this long without a request."""
    console_session_max_seconds: int = Field(default=8 * 3600, ge=300, le=7 * 86400)
    """And at the latest this long after sign-in."""
    console_sign_in_attempts_per_window: int = Field(default=30, ge=1, le=10_000)
    console_sign_in_window_seconds: int = Field(default=300, ge=1, le=86400)
    """At most that many sign-in attempts per client address in this window (then 429)."""
    console_oidc_issuer: str | None = None
    """An OpenID Provider (the council's identity provider) for console sign-in; off when unset.
    The officer must still have a local account: it holds the role and the party."""
    console_oidc_client_id: str | None = None
    console_oidc_client_secret_file: Path | None = None
    """The client secret, in a file outside the database (client_secret_basic)."""
    console_oidc_username_claim: str = "preferred_username"
    """The ID token claim shown in console sign-in log entries (never used to pick the account)."""

    @field_validator("outbound_allow", mode="before")
    @classmethod
    def _split_allow(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            parse_allow_list(str(v) for v in value)  # raises ValueError naming a bad entry
            return list(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def token_url(self) -> str:
        """The audience every client assertion must name (RFC 7523 §3)."""
        return f"{self.public_url}/oauth2/token"

    @property
    def token_issuer(self) -> str:
        return self.public_url


def load_settings(**overrides: object) -> Settings:
    """Read the environment, then apply explicit overrides (from CLI flags or tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]
