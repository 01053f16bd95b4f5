"""The broker's whole schema: every module with tables imported, so the shared metadata is full."""

from __future__ import annotations

from sqlalchemy import MetaData

import broker.agreements.tables
import broker.attestation.tables
import broker.audit.tables
import broker.consent.tables
import broker.console.tables
import broker.exchange.tables
import broker.identity.tables
import broker.notify.tables  # noqa: F401  (each registers its tables on the shared metadata)
from broker.db.tables import metadata


def all_metadata() -> MetaData:
    return metadata
