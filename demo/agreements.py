"""Re-sign the example register entries and agreements with the demo keys.

The private keys live in ``agreements/demo-keys/`` (DEMO ONLY: published in the repository, so
their thumbprints are refused outside demo mode, see ``broker/core/published_keys.py``).
``python -m demo.agreements`` (re)signs every example after an edit; it creates missing demo keys
and prints their thumbprints (a new one must be added to the published list).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from joserfc.jwk import OKPKey

from broker.agreements.loader import Layout, write_signature
from broker.agreements.model import Agreement
from broker.agreements.parsing import parse_document
from broker.agreements.register import DatasetEntry
from broker.agreements.signing import load_private_key, public_jwk, sign_detached
from demo.parties import DEMO_PARTIES

#: RFC 7638 thumbprints of the keys in agreements/demo-keys/, by party id (demo mode trusts
#: exactly these for the examples).
DEMO_SIGNING_KEYS: dict[str, str] = {
    "calderbridge-city-council": "BLV9xnmYwcK9otWugfT3wQRQySpyKd87QbRURWH6RzQ",
    "R9Z": "k_KN5MN3KfGTlZ3N90me1SYzzwgIrxkLlJY0eAQd8SQ",
    "Y99901": "rIy3DwkjNlr0cqVjvsDswZkJs11nIXIfcqjG5-4vBGM",
    "Y99902": "9qrVwOzBmt9woDchry2QtORIO_zMZ5IGyEsVw5ixTTc",
    "west-calder-police": "bU6zL35lqJgbS21Lbfz0zwF74IQbHWrvDZvqk4bh1bY",
    "northgate-housing": "RpxdyBijtfPlmviua6XS7OTH3FqzPA7RS6rd4HD-BNg",
}


def _resign(repo: Path) -> None:  # pragma: no cover - a maintainer's tool, run by hand
    key_dir = repo / "agreements" / "demo-keys"
    layout = Layout(repo / "agreements" / "examples")
    layout.keys_dir.mkdir(parents=True, exist_ok=True)
    keys = {}
    for party in DEMO_PARTIES:
        pem = key_dir / f"{party.id}.pem"
        if not pem.exists():
            pem.write_bytes(OKPKey.generate_key("Ed25519").as_pem(private=True))
        keys[party.id] = load_private_key(pem.read_bytes())
        jwks = {"keys": [public_jwk(keys[party.id])]}
        (layout.keys_dir / f"{party.id}.jwks.json").write_text(json.dumps(jwks, indent=2) + "\n")
    for path in sorted(layout.register_dir.glob("*.yaml")):
        entry = parse_document(path.read_text(), str(path))
        assert isinstance(entry, DatasetEntry)
        path.with_name(path.stem + ".sig.json").unlink(missing_ok=True)
        write_signature(
            path, entry.owner, sign_detached(entry.canonical_bytes(), keys[entry.owner])
        )
    digests: dict[str, str] = {}
    for path in sorted(layout.register_dir.glob("*.yaml")):
        doc = parse_document(path.read_text(), str(path))
        assert isinstance(doc, DatasetEntry)
        digests[doc.id] = doc.digest()
    for path in sorted(layout.isa_dir.glob("*.yaml")):
        text = path.read_text()
        for dataset_id, value in digests.items():
            pattern = rf"(?m)^(\s+{re.escape(dataset_id)}: )sha256:[0-9a-f]{{64}}$"
            text = re.sub(pattern, rf"\g<1>{value}", text)
        path.write_text(text)
        agreement = parse_document(text, str(path))
        assert isinstance(agreement, Agreement)
        path.with_name(path.stem + ".sig.json").unlink(missing_ok=True)
        for member in agreement.parties:
            token = sign_detached(agreement.canonical_bytes(), keys[member.id])
            write_signature(path, member.id, token)
    print("DEMO_SIGNING_KEYS = {")
    for party_id, key in keys.items():
        print(f'    "{party_id}": "{key.thumbprint()}",')
    print("}")


if __name__ == "__main__":  # pragma: no cover
    _resign(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
