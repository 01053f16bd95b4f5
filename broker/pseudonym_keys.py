"""The pseudonym key file on disk: the one place it is read, created and rotated.

The file's format, both the versioned one and the older single line of hex, is parsed by
:func:`broker.core.pseudonym.parse_pseudonym_keys`; every user of the keys (the exchange pipeline,
the subjects' services, the console, the notification sealer, the secrets check) loads it here,
so all of them hold the same keyring and searches find every key version.
"""

from __future__ import annotations

import os
from pathlib import Path

from broker.core.errors import ConfigurationError
from broker.core.pseudonym import (
    PseudonymKeyring,
    format_key,
    generate_key,
    parse_pseudonym_keys,
)


def load_pseudonym_keys(path: Path) -> PseudonymKeyring:
    """Read the key file (either format). Raises :class:`ConfigurationError` when it is
    missing, unreadable or weak."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"cannot read pseudonym key file {path}: {e}") from e
    return parse_pseudonym_keys(text)


def generate_key_file(path: Path, version: str = "v1") -> PseudonymKeyring:
    """Create a key file with one new key, readable by its owner only.

    Refuses to overwrite an existing file (:class:`ConfigurationError`); rotate with
    :func:`add_key_version` instead.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key(version)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise ConfigurationError(f"pseudonym key file {path} exists already") from e
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# broker pseudonym keys: keep secret, outside the database\n")
        f.write(format_key(key) + "\n")
    return PseudonymKeyring((key,))


def add_key_version(path: Path, version: str) -> PseudonymKeyring:
    """Append a new current key to an existing key file (rotation); returns the new keyring."""
    ring = load_pseudonym_keys(path)
    key = generate_key(version)
    ring = PseudonymKeyring((*ring.keys, key))
    with path.open("a", encoding="utf-8") as f:
        f.write(format_key(key) + "\n")
    return ring
