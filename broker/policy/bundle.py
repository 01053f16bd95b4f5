"""OPA bundles: build, sign and verify, exactly as OPA's bundle format and bundle signing specify.

A bundle is a gzipped tar of::

    .manifest              {"revision": <contents digest>, "roots": ["sharing", "isa"], ...}
    data.json              {"isa": {...}}  (broker.policy.compiled.compile_data)
    policies/sharing.rego  the policy (unit tests are left out)
    .signatures.json       {"signatures": ["<one JWT>"]}   (when signed)

The JWT (RS256, PS256 or ES256: OPA does not verify EdDSA bundles) has ``kid`` in its protected
header and ``{"files": [{"name", "hash", "algorithm": "SHA-256"}...], "keyid": kid}`` as payload,
one entry per file. Structured files (``data.json``, ``.manifest``) are hashed the way OPA's
``v1/bundle/hash.go`` walks them: objects with keys sorted, no whitespace, strings as Go's encoder
writes them without HTML escaping, numbers exactly as written; ``.rego`` files over their raw bytes.

Everything here is pure except :func:`write_bundle_file` and :func:`policy_modules`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from broker.core.signing_key import SigningKey
from broker.policy.errors import BundleError

MANIFEST = ".manifest"
DATA = "data.json"
SIGNATURES = ".signatures.json"
ROOTS = ("sharing", "isa")
ALGORITHMS = ("RS256", "PS256", "ES256")
_STRUCTURED = {MANIFEST, DATA}
_MAX_BUNDLE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class PolicyBundle:
    """The verified (or freshly built) contents of one bundle."""

    revision: str
    modules: Mapping[str, str]
    """Bundle path -> Rego source."""
    data: Mapping[str, Any]
    files: Mapping[str, bytes]
    """Every file of the tar, by name, as written."""
    signed_by: str | None = None
    """The ``kid`` that signed it, or ``None`` for an unsigned bundle."""


@dataclass(frozen=True)
class VerificationKey:
    """A public key (PEM) and the algorithm OPA's ``keys`` config names for it."""

    pem: bytes
    algorithm: str = "RS256"


# ------------------------------------------------------------------------ Go-compatible hashing


class _Number(str):
    """A JSON number kept exactly as written, as OPA's ``util.Unmarshal`` (UseNumber) keeps it."""


def _go_string(value: str) -> str:
    # Go's encoder with SetEscapeHTML(false): like Python's ensure_ascii=False, except that Go also
    # escapes U+2028 and U+2029.
    return (
        json.dumps(value, ensure_ascii=False)
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _walk(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value, key=lambda k: k.encode("utf-8"))):
            if i:
                out.append(",")
            out.append(_go_string(key))
            out.append(":")
            _walk(value[key], out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _walk(item, out)
        out.append("]")
    elif isinstance(value, _Number):
        out.append(str(value))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, str):
        out.append(_go_string(value))
    else:  # pragma: no cover - json.loads yields nothing else
        raise BundleError(f"unexpected JSON value {value!r}")


def _parse_json(raw: bytes, name: str) -> Any:
    try:
        return json.loads(raw, parse_int=_Number, parse_float=_Number, parse_constant=_reject)
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleError(f"{name}: not valid JSON") from e


def _reject(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def file_hash(name: str, raw: bytes) -> str:
    """SHA-256 (hex) of one bundle file as OPA computes it for signatures."""
    if Path(name).name in _STRUCTURED:
        parts: list[str] = []
        _walk(_parse_json(raw, name), parts)
        return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()
    return hashlib.sha256(raw).hexdigest()


# ----------------------------------------------------------------------------- JWS (compact)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as e:
        raise BundleError("signature: bad base64url") from e


def _sign(key: SigningKey, signing_input: bytes) -> bytes:
    private = serialization.load_pem_private_key(key.pem, password=None)
    if key.algorithm in ("RS256", "PS256"):
        if not isinstance(private, rsa.RSAPrivateKey):
            raise BundleError(f"{key.algorithm} needs an RSA key")
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if key.algorithm == "RS256"
            else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        )
        return private.sign(signing_input, pad, hashes.SHA256())
    if key.algorithm == "ES256":
        if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
            raise BundleError("ES256 needs a P-256 key")
        # Deterministic ECDSA (RFC 6979): every instance holding the key signs a revision into
        # the same bytes, so an OPA sidecar sees one bundle whichever instance it asks.
        algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
        r, s = decode_dss_signature(private.sign(signing_input, algorithm))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raise BundleError(f"algorithm {key.algorithm!r} is not one OPA verifies for bundles")


def _verify(key: VerificationKey, signing_input: bytes, signature: bytes) -> None:
    try:
        public = serialization.load_pem_public_key(key.pem)
        if key.algorithm in ("RS256", "PS256") and isinstance(public, rsa.RSAPublicKey):
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if key.algorithm == "RS256"
                else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            )
            public.verify(signature, signing_input, pad, hashes.SHA256())
            return
        if key.algorithm == "ES256" and isinstance(public, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise BundleError("signature: bad ES256 length")
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            return
    except InvalidSignature as e:
        raise BundleError("signature: does not verify") from e
    except ValueError as e:
        raise BundleError(f"signature: unusable verification key ({e})") from e
    raise BundleError(f"signature: key does not fit algorithm {key.algorithm}")


def sign_files(files: Mapping[str, bytes], key: SigningKey) -> bytes:
    """The ``.signatures.json`` content for ``files`` (every file but the signatures themselves)."""
    header = {"alg": key.algorithm, "kid": key.kid, "typ": "JWT"}
    payload = {
        "files": [
            {"name": name, "hash": file_hash(name, raw), "algorithm": "SHA-256"}
            for name, raw in sorted(files.items())
        ],
        "keyid": key.kid,
    }
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(payload, separators=(",", ":")).encode())
    ).encode("ascii")
    token = signing_input.decode("ascii") + "." + _b64(_sign(key, signing_input))
    return json.dumps({"signatures": [token]}, indent=2).encode("utf-8")


# ----------------------------------------------------------------------------- build


def content_revision(modules: Mapping[str, str], data: Mapping[str, Any]) -> str:
    """The revision: SHA-256 over the policy files and the data, so equal contents give equal
    revisions and any change gives a new one."""
    h = hashlib.sha256()
    parts: list[str] = []
    _walk(_parse_json(json.dumps(data).encode("utf-8"), DATA), parts)
    h.update(b"data.json\x00" + "".join(parts).encode("utf-8") + b"\x00")
    for path, source in sorted(modules.items()):
        h.update(path.encode("utf-8") + b"\x00" + source.encode("utf-8") + b"\x00")
    return h.hexdigest()


def build_bundle(
    modules: Mapping[str, str], data: Mapping[str, Any], key: SigningKey | None = None
) -> tuple[PolicyBundle, bytes]:
    """Build a bundle (and its tar.gz bytes) from Rego ``modules`` (bundle path -> source) and the
    compiled ``data``. Signed when ``key`` is given. Deterministic: same inputs, same bytes."""
    for path in modules:
        if not path.endswith(".rego") or path.startswith("/") or ".." in path.split("/"):
            raise BundleError(f"{path}: not a bundle path for a .rego file")
    revision = content_revision(modules, data)
    manifest = {"revision": revision, "roots": list(ROOTS), "rego_version": 1}
    files: dict[str, bytes] = {
        MANIFEST: json.dumps(manifest, sort_keys=True).encode("utf-8"),
        DATA: json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8"),
    }
    for path, source in sorted(modules.items()):
        files[path] = source.encode("utf-8")
    if key is not None:
        files[SIGNATURES] = sign_files(files, key)
    bundle = PolicyBundle(revision, dict(modules), data, files, key.kid if key else None)
    return bundle, pack(files)


def pack(files: Mapping[str, bytes]) -> bytes:
    """A deterministic tar.gz of ``files`` (fixed mtimes and owners)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def _gunzip(blob: bytes) -> bytes:
    # Whole-stream check (CRC, length, no trailing bytes) and a size bound: tarfile alone stops
    # reading before the gzip trailer, so a damaged trailer would go unnoticed.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(blob, _MAX_BUNDLE_BYTES)
    except zlib.error as e:
        raise BundleError(f"not a gzipped tar bundle: {e}") from e
    if inflater.unconsumed_tail:
        raise BundleError("bundle too large")
    if not inflater.eof or inflater.unused_data:
        raise BundleError("not a gzipped tar bundle: truncated or trailing data")
    return raw


def unpack(blob: bytes) -> dict[str, bytes]:
    """The files of a tar.gz bundle. Raises :class:`BundleError` on a damaged archive or anything
    but regular files."""
    files: dict[str, bytes] = {}
    raw = _gunzip(blob)
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    if member.isdir():
                        continue
                    raise BundleError(f"{member.name}: not a regular file")
                name = member.name.lstrip("/")
                if ".." in name.split("/") or name in files:
                    raise BundleError(f"{member.name}: bad or duplicate path")
                extracted = tar.extractfile(member)
                if extracted is None:  # pragma: no cover - regular files always extract
                    raise BundleError(f"{name}: unreadable")
                files[name] = extracted.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BundleError(f"not a gzipped tar bundle: {e}") from e
    return files


# ----------------------------------------------------------------------------- verify


def verify_signatures(files: Mapping[str, bytes], keys: Mapping[str, VerificationKey]) -> str:
    """Check ``.signatures.json`` against ``keys`` (kid -> key) the way OPA does: exactly one JWT,
    a trusted ``kid``, a valid signature, and every file listed with a matching hash, no file
    missing and none extra. Returns the ``kid``. Raises :class:`BundleError`."""
    raw = files.get(SIGNATURES)
    if raw is None:
        raise BundleError("bundle is not signed (.signatures.json missing)")
    doc = _parse_json(raw, SIGNATURES)
    tokens = doc.get("signatures") if isinstance(doc, dict) else None
    if not isinstance(tokens, list) or len(tokens) != 1 or not isinstance(tokens[0], str):
        raise BundleError(".signatures.json: expected exactly one JWT")
    parts = tokens[0].split(".")
    if len(parts) != 3:
        raise BundleError("signature: not a compact JWS")
    try:
        header = json.loads(_unb64(parts[0]))
        payload = json.loads(_unb64(parts[1]))
    except ValueError as e:
        raise BundleError("signature: header or payload is not JSON") from e
    kid = header.get("kid") if isinstance(header, dict) else None
    if not isinstance(kid, str) or kid not in keys:
        raise BundleError(f"signature: key id {kid!r} is not trusted")
    key = keys[kid]
    if header.get("alg") != key.algorithm:
        raise BundleError(f"signature: algorithm {header.get('alg')!r} is not {key.algorithm}")
    _verify(key, (parts[0] + "." + parts[1]).encode("ascii"), _unb64(parts[2]))
    listed = payload.get("files") if isinstance(payload, dict) else None
    if not isinstance(listed, list):
        raise BundleError("signature: payload has no files")
    expected: dict[str, dict[str, Any]] = {}
    for entry in listed:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise BundleError("signature: malformed file entry")
        expected[entry["name"].lstrip("/")] = entry
    for name, content in files.items():
        if name == SIGNATURES:
            continue
        entry = expected.pop(name, None)
        if entry is None:
            raise BundleError(f"{name}: not included in the bundle signature")
        if entry.get("algorithm") != "SHA-256":
            raise BundleError(f"{name}: unsupported hash algorithm {entry.get('algorithm')!r}")
        if entry.get("hash") != file_hash(name, content):
            raise BundleError(f"{name}: digest mismatch")
    if expected:
        raise BundleError(f"signed files missing from the bundle: {', '.join(sorted(expected))}")
    return kid


def load_bundle(
    blob: bytes, keys: Mapping[str, VerificationKey] | None, *, require_signature: bool = True
) -> PolicyBundle:
    """Unpack and verify a bundle: signature (when required), manifest, data and revision.

    Compiling the policy is the engine's job (:class:`broker.policy.embedded.EmbeddedEngine` raises
    :class:`BundleError` too). Raises :class:`BundleError` naming the first problem.
    """
    files = unpack(blob)
    signed_by: str | None = None
    if require_signature:
        signed_by = verify_signatures(files, keys or {})
    if MANIFEST not in files or DATA not in files:
        raise BundleError("bundle needs a .manifest and a data.json")
    try:
        manifest = json.loads(files[MANIFEST])
        data = json.loads(files[DATA])
        modules = {n: c.decode("utf-8") for n, c in files.items() if n.endswith(".rego")}
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleError(f"bundle file is not valid: {e}") from e
    if not isinstance(manifest, dict) or not isinstance(data, dict):
        raise BundleError("manifest and data must be JSON objects")
    if sorted(manifest.get("roots", [])) != sorted(ROOTS):
        raise BundleError(f"manifest roots must be {list(ROOTS)}")
    if not modules:
        raise BundleError("bundle has no policy")
    revision = manifest.get("revision")
    if revision != content_revision(modules, data):
        raise BundleError("manifest revision is not the digest of the contents")
    return PolicyBundle(str(revision), modules, data, files, signed_by)


def write_bundle_file(path: Path, blob: bytes) -> None:
    """Write atomically (temp file, then rename) so a reader never sees half a bundle."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)


def policy_modules(policy_dir: Path) -> dict[str, str]:
    """The policy files of ``policy_dir`` as bundle modules (unit tests left out)."""
    return {
        f"policies/{p.name}": p.read_text(encoding="utf-8")
        for p in sorted(policy_dir.glob("*.rego"))
        if not p.name.endswith("_test.rego")
    }
