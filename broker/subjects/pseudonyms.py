"""Loading the pseudonym keyring from the key file ``broker secrets init`` writes.

The file is either the versioned format of :mod:`broker.core.pseudonym` (``v1:<base64url>``
lines) or, as ``secrets init`` writes it today, one line of hex: that is read as key version
``v1`` whose secret is the hex-decoded bytes. Either way the result is a
:class:`PseudonymKeyring`; searches use every version (``all_pseudonyms``).
"""

from __future__ import annotations

from pathlib import Path

from broker.core.errors import ConfigurationError
from broker.core.pseudonym import PseudonymKey, PseudonymKeyring, parse_key_file

LEGACY_VERSION = "v1"


def parse_pseudonym_keys(text: str) -> PseudonymKeyring:
    """Parse either format above. Raises :class:`ConfigurationError`."""
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    if len(lines) == 1 and ":" not in lines[0]:
        try:
            secret = bytes.fromhex(lines[0])
        except ValueError:
            secret = lines[0].encode("utf-8")
        return PseudonymKeyring((PseudonymKey(LEGACY_VERSION, secret),))
    return parse_key_file(text)


def load_pseudonym_keys(path: Path) -> PseudonymKeyring:
    """Read the key file. Raises :class:`ConfigurationError` when missing or weak."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"cannot read pseudonym key file {path}: {e}") from e
    return parse_pseudonym_keys(text)
