"""The statement a party signs to sign, renew or revoke an agreement held by the broker. Pure.

A party never signs the agreement's bytes alone: it signs a small statement that binds the
agreement's digest to everything else the act depends on, so that a signature cannot be replayed
for another agreement, version, party, signatory or act::

    {"context": "information-sharing-broker agreement signature v1",
     "agreement_id": "ISA-X", "version": 2,
     "digest": "sha256:...",            # RFC 8785 digest of the agreement's canonical content
     "previous_digest": "sha256:...",   # the digest of the version it replaces, or null
     "party": "R9Z",
     "signatory": {"name": "...", "role": "Caldicott Guardian"},
     "action": "sign" | "renew" | "revoke"}

The signature is a detached JWS (``broker.agreements.signing``) over the RFC 8785 bytes of the
statement. Both sides build the statement themselves from the agreement's text: the party-side
CLI from the YAML its officer reviewed, the broker from the YAML it holds; the signature verifies
only when the two agree byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from broker.agreements.model import Agreement
from broker.core.canonical import JSONValue, canonical_bytes, digest_bytes

CONTEXT = "information-sharing-broker agreement signature v1"
"""A fixed string naming what a statement is: a signature over it means nothing elsewhere."""

Action = Literal["sign", "renew", "revoke"]
ACTIONS: tuple[Action, ...] = ("sign", "renew", "revoke")


@dataclass(frozen=True)
class Statement:
    """What one party signs for one act on one version of an agreement."""

    agreement_id: str
    version: int
    digest: str
    previous_digest: str | None
    party: str
    signatory_name: str
    signatory_role: str
    action: Action

    def content(self) -> dict[str, JSONValue]:
        return {
            "context": CONTEXT,
            "agreement_id": self.agreement_id,
            "version": self.version,
            "digest": self.digest,
            "previous_digest": self.previous_digest,
            "party": self.party,
            "signatory": {"name": self.signatory_name, "role": self.signatory_role},
            "action": self.action,
        }

    def canonical_bytes(self) -> bytes:
        """The RFC 8785 bytes the party's detached JWS covers."""
        return canonical_bytes(self.content())

    def digest_of_statement(self) -> str:
        """``sha256:<hex>`` of :meth:`canonical_bytes` (names a recorded revocation)."""
        return digest_bytes(self.canonical_bytes())


def statement_for(
    agreement: Agreement, party_id: str, action: Action, previous_digest: str | None
) -> Statement:
    """The statement ``party_id`` signs for ``action`` on ``agreement``. Its signatory is the one
    the agreement names for that party. Raises ``ValueError`` when the party is not in it."""
    party = agreement.party(party_id)
    if party is None:
        raise ValueError(f"{party_id!r} is not a party to agreement {agreement.id!r}")
    return Statement(
        agreement_id=agreement.id,
        version=agreement.version,
        digest=agreement.digest(),
        previous_digest=previous_digest,
        party=party_id,
        signatory_name=party.signatory.name,
        signatory_role=party.signatory.role,
        action=action,
    )


def signing_action(previous_digest: str | None) -> Action:
    """``sign`` for an agreement's first version, ``renew`` for one that replaces another."""
    return "renew" if previous_digest else "sign"
