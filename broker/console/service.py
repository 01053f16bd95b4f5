"""The console's service object: what its pages need, built once by :func:`build_console`.

Every console action is appended to the audit log (fail closed: if the entry cannot be written,
the page is refused). Reads are ``audit-read`` entries whose ``client_id`` is
``console:<username>``; sign-ins and reviews are ``admin`` entries. Subjects appear only as
pseudonyms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine

from broker.agreements.loader import VerifiedAgreement
from broker.audit.entry import AuditEntry
from broker.audit.search import AuditScope, audit_read_entry
from broker.console.access import audit_scope, visible_agreements
from broker.console.accounts import Account, Accounts
from broker.console.oidc import OidcConfig, OidcSignIn
from broker.console.throttle import AddressThrottle
from broker.console.verification import Verifier
from broker.container import Services
from broker.core.pseudonym import PseudonymKeyring
from broker.pseudonym_keys import load_pseudonym_keys
from broker.settings import Settings


@dataclass
class Console:
    services: Services
    accounts: Accounts
    pseudonyms: PseudonymKeyring
    verifier: Verifier
    secure_cookies: bool
    oidc: OidcSignIn | None = None
    throttle: AddressThrottle = field(default_factory=AddressThrottle)
    """Sign-in attempts per client address."""
    _party_names: dict[str, str] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        return self.services.engine

    def record_read(self, account: Account, resource: str, query: Mapping[str, object]) -> None:
        """Log a read by an officer. Raises AuditUnavailableError (the page is refused)."""
        self.services.audit.append(
            audit_read_entry(
                client_id=account.actor,
                party_id=account.party_id,
                resource=f"console:{resource}",
                query=dict(query),
            )
        )

    def record_action(self, account: Account | None, action: str, **details: object) -> None:
        """Log a sign-in, sign-out, review or verification run."""
        self.services.audit.append(
            AuditEntry(
                kind="admin",
                client_id=account.actor if account else "console",
                party_id=account.party_id if account else None,
                details={"action": f"console-{action}", **details},
            )
        )

    def agreements(self) -> list[VerifiedAgreement]:
        last = self.services.policy_runtime.last
        return list(last.agreements) if last is not None else []

    def visible_agreements(self, account: Account) -> list[VerifiedAgreement]:
        return visible_agreements(account, self.agreements())

    def visible_agreement_ids(self, account: Account) -> list[str]:
        ids = {a.status.agreement_id for a in self.visible_agreements(account)}
        return sorted(i for i in ids if i is not None)

    def scope(self, account: Account) -> AuditScope | None:
        last = self.services.policy_runtime.last
        return audit_scope(account, self.agreements(), last.register if last else None)

    def party_names(self) -> dict[str, str]:
        """Every registered party's name by id."""
        self._party_names = {p.id: p.name for p in self.services.registry.list_parties()}
        return dict(self._party_names)

    def party_name(self, party_id: object) -> str:
        if not isinstance(party_id, str):
            return ""
        if party_id not in self._party_names:
            self._party_names = {p.id: p.name for p in self.services.registry.list_parties()}
        return self._party_names.get(party_id, party_id)


def build_console(services: Services, pseudonyms: PseudonymKeyring | None = None) -> Console:
    """The console for these services. Raises ConfigurationError when the pseudonym key is
    unreadable (subject searches would be impossible)."""
    settings = services.settings
    return Console(
        services=services,
        accounts=Accounts(
            services.engine,
            idle_seconds=settings.console_session_idle_seconds,
            max_seconds=settings.console_session_max_seconds,
        ),
        pseudonyms=pseudonyms or load_pseudonym_keys(settings.pseudonym_key_file),
        verifier=Verifier(services.engine, services.audit),
        secure_cookies=settings.public_url.startswith("https://"),
        oidc=_oidc(settings, services.engine),
        throttle=AddressThrottle(
            # Kept per process: each of ``workers`` processes allows its share of the attempts.
            attempts=max(1, settings.console_sign_in_attempts_per_window // settings.workers),
            window_seconds=settings.console_sign_in_window_seconds,
        ),
    )


def _oidc(settings: Settings, engine: Engine) -> OidcSignIn | None:
    config = OidcConfig.from_settings(settings)
    if config is None:
        return None
    return OidcSignIn(config, engine)
