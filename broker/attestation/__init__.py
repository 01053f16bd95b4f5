"""Statements signed with the broker's own attestation key (proof reuse, consent receipts)."""
