"""``broker agreements``: validate, sign, verify, list and revoke Information Sharing Agreements.

Exit codes: 0 good, 1 the check failed (invalid, unverified, not active), 2 usage or environment.
With ``--demo`` (or ``BROKER_DEMO=1``) the demo parties and the demo keys of
``agreements/examples/keys`` are used, in memory, without a database; otherwise the parties and
the trust store come from the database, and revocations and versions seen are recorded there.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from broker.agreements.authoring import infer_root, revoke, sign_file, validate_file
from broker.agreements.errors import AgreementError, DocumentInvalidError
from broker.agreements.loader import LoadResult, load_directory
from broker.agreements.signing import PartyKey, TrustedKey, load_private_key, thumbprint
from broker.agreements.store import (
    AgreementStateStore,
    MemoryAgreementStore,
    SqlAgreementStore,
    read_jwks_dir,
)
from broker.cli.agreement_drafts import rotate_key, sign_draft
from broker.cli.common import require_demo
from broker.core.errors import BrokerError, InvalidInput
from broker.db.engine import build_engine
from broker.db.tables import parties
from broker.settings import load_settings

app = typer.Typer(help="Information Sharing Agreements.", no_args_is_help=True)

RootOpt = Annotated[
    Path | None,
    typer.Option("--root", help="Agreements directory (register/, isa/, revocations/, keys/)."),
]
DemoOpt = Annotated[
    bool, typer.Option("--demo", help="Demo parties and demo keys, in memory, no database.")
]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Evaluate at this ISO 8601 time instead of now (e.g. 2027-05-01)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@dataclass(frozen=True)
class _Context:
    demo: bool
    known_parties: frozenset[str]
    store: AgreementStateStore
    default_root: Path


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _context(demo_flag: bool) -> _Context:
    settings = load_settings()
    demo = demo_flag or settings.demo
    if demo:
        require_demo()
        from demo.agreements import DEMO_SIGNING_KEYS
        from demo.parties import DEMO_PARTIES

        # The examples live in <agreements dir>/examples; their public keys in examples/keys.
        demo_root = settings.agreements_dir / "examples"
        store = MemoryAgreementStore()
        try:
            found = read_jwks_dir(demo_root / "keys")
        except AgreementError as e:
            raise _fail(e.detail) from e
        for party, _file, jwk in found:
            kid = thumbprint(jwk)
            # Demo mode trusts exactly the published demo keys; other files count for nothing.
            if DEMO_SIGNING_KEYS.get(party) == kid:
                store.keys[kid] = TrustedKey(kid, party, jwk)
        return _Context(True, frozenset(p.id for p in DEMO_PARTIES), store, demo_root)
    try:
        engine = build_engine(settings.database_url, pooled=False)
        with engine.connect() as conn:
            known = frozenset(conn.execute(select(parties.c.id)).scalars())
    except SQLAlchemyError as e:
        raise _fail(f"database unavailable or not migrated: {type(e).__name__}") from e
    return _Context(False, known, SqlAgreementStore(engine), settings.agreements_dir)


def _now(at: str | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(at)
    except ValueError as e:
        raise _fail(f"--at: not an ISO 8601 date or time: {at!r}") from e
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _key(path: Path) -> PartyKey:
    try:
        return load_private_key(path.read_bytes())
    except OSError as e:
        raise _fail(f"cannot read the key file: {e}") from e
    except AgreementError as e:
        raise _fail(f"{path}: {e.detail}") from e


def _print_statuses(result: LoadResult, as_json: bool, *, with_problems: bool = True) -> None:
    if as_json:
        payload = {
            "agreements": [a.summary() for a in result.agreements],
            "problems": [str(p) for p in result.problems] if with_problems else [],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    for item in result.agreements:
        s = item.status
        flag = " (review due)" if s.review_due else ""
        name = f"{s.agreement_id} v{s.version}" if s.agreement_id else s.file
        typer.echo(f"{name}: {s.status}{flag}  [{s.file}]")
        for reason in s.reasons:
            typer.echo(f"  - {reason}")
    if with_problems:
        for problem in result.problems:
            typer.echo(f"warning: {problem}")


@app.command("validate")
def validate_cmd(
    files: Annotated[list[Path], typer.Argument(help="Agreement, dataset or revocation files.")],
    root: RootOpt = None,
    demo: DemoOpt = False,
) -> None:
    """Schema and consistency check; prints file, place and reason of every problem."""
    ctx = _context(demo)
    bad = 0
    for file in files:
        problems = validate_file(
            file, root or infer_root(file, ctx.default_root), ctx.known_parties
        )
        for problem in problems:
            typer.echo(str(problem))
        if problems:
            bad += 1
        else:
            typer.echo(f"{file}: valid")
    raise typer.Exit(1 if bad else 0)


@app.command("sign")
def sign_cmd(
    file: Annotated[
        Path | None,
        typer.Argument(help="The document to sign (with --draft: the YAML you reviewed)."),
    ] = None,
    party: Annotated[str, typer.Option("--party", help="The party signing.")] = "",
    key: Annotated[Path, typer.Option("--key", help="The party's private key (PEM).")] = Path(),
    root: RootOpt = None,
    demo: DemoOpt = False,
    draft: Annotated[
        str | None,
        typer.Option("--draft", help="Sign this draft held by the broker (by its draft id)."),
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="The broker's URL [BROKER_PUBLIC_URL].")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="BROKER_TOKEN", help="Your party's access token."),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="With --draft: sign, renew or revoke [as the draft says]."),
    ] = None,
) -> None:
    """Add PARTY's detached signature beside FILE (FILE must validate first); or, with --draft,
    sign the broker's draft: only if the digest of the YAML you reviewed (FILE, else the one
    fetched) equals the one the broker shows."""
    if not party:
        raise _fail("--party is required")
    if draft is not None:
        if not token:
            raise _fail("--token (or BROKER_TOKEN) is required with --draft")
        settings = load_settings()
        done = sign_draft(
            url=url or settings.public_url,
            token=token,
            draft_id=draft,
            party=party,
            key=_key(key),
            reviewed=file,
            action=action,
            demo=demo or settings.demo,
        )
        typer.echo(f"accepted: draft {draft} is {done.get('status')}")
        return
    if file is None:
        raise _fail("FILE is required (or --draft)")
    ctx = _context(demo)
    signing_key = _key(key)
    try:
        out = sign_file(
            file,
            party,
            signing_key,
            root=root or infer_root(file, ctx.default_root),
            known_parties=ctx.known_parties,
            demo=ctx.demo,
        )
    except DocumentInvalidError as e:
        for problem in e.problems:
            typer.echo(str(problem), err=True)
        raise _fail(e.detail, 1) from e
    except BrokerError as e:
        raise _fail(e.detail) from e
    typer.echo(f"signed by {party} with key {signing_key.thumbprint()}: {out}")


@app.command("rotate-key")
def rotate_key_cmd(
    party: Annotated[str, typer.Option("--party", help="Your party.")],
    key: Annotated[Path, typer.Option("--key", help="The party's current private key (PEM).")],
    new_key: Annotated[Path, typer.Option("--new-key", help="The new private key (PEM).")],
    token: Annotated[
        str,
        typer.Option("--token", envvar="BROKER_TOKEN", help="An officer's access token."),
    ],
    url: Annotated[
        str | None, typer.Option("--url", help="The broker's URL [BROKER_PUBLIC_URL].")
    ] = None,
    demo: DemoOpt = False,
) -> None:
    """Make NEW-KEY your party's agreement-signing key, by a statement signed with the current
    key (the broker never holds either private key; the operator cannot set a party's key)."""
    settings = load_settings()
    done = rotate_key(
        url=url or settings.public_url,
        token=token,
        party=party,
        current=_key(key),
        new=_key(new_key),
        demo=demo or settings.demo,
    )
    typer.echo(f"{party}: current key is now {done.get('current_kid')}")


def _load(
    ctx: _Context, root: Path, at: str | None, files: Sequence[Path] | None = None
) -> LoadResult:
    try:
        return load_directory(
            root,
            ctx.store,
            known_parties=ctx.known_parties,
            now=_now(at),
            demo=ctx.demo,
            agreement_files=files,
        )
    except BrokerError as e:
        raise _fail(e.detail) from e


@app.command("verify")
def verify_cmd(
    files: Annotated[list[Path], typer.Argument(help="Agreement files to verify.")],
    root: RootOpt = None,
    demo: DemoOpt = False,
    at: AtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify signatures, trust, revocation and dates; exit 0 only if every agreement is active."""
    ctx = _context(demo)
    result = _load(ctx, root or infer_root(files[0], ctx.default_root), at, files)
    _print_statuses(result, as_json)
    ok = bool(result.agreements) and all(a.status.status == "active" for a in result.agreements)
    raise typer.Exit(0 if ok else 1)


@app.command("list")
def list_cmd(
    root: RootOpt = None,
    demo: DemoOpt = False,
    at: AtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every agreement: id, version, parties, status, expiry, review flag."""
    ctx = _context(demo)
    result = _load(ctx, root or ctx.default_root, at)
    if as_json:
        _print_statuses(result, True)
        return
    typer.echo(f"{'ID':<28} {'VER':>3}  {'STATUS':<8} {'EXPIRES':<10}  REVIEW  PARTIES")
    for item in result.agreements:
        s = item.status
        a = item.agreement
        expires = a.validity.expires_on.isoformat() if a else "-"
        names = ",".join(p.id for p in a.parties) if a else "-"
        review = "due" if s.review_due else "-"
        typer.echo(
            f"{s.agreement_id or s.file:<28} {s.version or '-':>3}  {s.status:<8} "
            f"{expires:<10}  {review:<6}  {names}"
        )


@app.command("revoke")
def revoke_cmd(
    agreement_id: Annotated[str, typer.Argument(metavar="ID", help="The agreement id.")],
    party: Annotated[str, typer.Option("--party", help="The revoking party.")],
    key: Annotated[Path, typer.Option("--key", help="The party's private key (PEM).")],
    reason: Annotated[str, typer.Option("--reason", help="Why the agreement is revoked.")],
    version: Annotated[
        int | None, typer.Option("--version", help="Revoke up to this version [latest].")
    ] = None,
    root: RootOpt = None,
    demo: DemoOpt = False,
) -> None:
    """Write a revocation signed by PARTY (in force once seen, even if the file is deleted)."""
    ctx = _context(demo)
    signing_key = _key(key)
    base = root or ctx.default_root
    try:
        path = revoke(
            base,
            agreement_id,
            party,
            signing_key,
            reason,
            now=dt.datetime.now(dt.UTC),
            version=version,
            demo=ctx.demo,
        )
    except BrokerError as e:
        raise _fail(e.detail) from e
    except ValueError as e:  # pydantic: an empty or over-long reason
        raise _fail(f"cannot write the revocation: {e}") from e
    typer.echo(f"revocation written: {path}")
    # Load once now so that the revocation is verified and recorded at once (the database keeps
    # it even if the file is later deleted).
    for item in _load(ctx, base, None).agreements:
        if item.status.agreement_id == agreement_id:
            typer.echo(f"{agreement_id} v{item.status.version}: {item.status.status}")


@app.command("diff")
def diff_cmd(
    old: Annotated[Path, typer.Argument(help="The agreement version in force.")],
    new: Annotated[Path, typer.Argument(help="The proposed version.")],
    root: RootOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Everything that differs between two versions, then the permissions gained and lost.

    Every field of the document is compared: parties, roles and signatories, flows, requester
    roles, identity, purposes, lawful bases, conditions, retention, break-glass, fields, dates.
    For governance officers before they sign a new version. Exit 0 always when both parse
    (a difference is information, not a failure); 2 when a file cannot be read.
    """
    from broker.agreements.authoring import read_document, unsigned_register
    from broker.agreements.diff import diff_documents, diff_json
    from broker.agreements.model import Agreement
    from broker.policy.compiled import DatasetEntry as CompiledDataset
    from broker.policy.diff import diff_agreements
    from broker.policy.from_agreements import compile_unverified

    try:
        docs = [read_document(old), read_document(new)]
    except DocumentInvalidError as e:
        raise _fail(str(e)) from e
    old_doc, new_doc = docs
    if not isinstance(old_doc, Agreement) or not isinstance(new_doc, Agreement):
        raise _fail("both files must be agreements")
    register = unsigned_register(root or infer_root(new, Path("agreements")))
    datasets = [
        CompiledDataset(id=e.id, owner=e.owner, fields=e.field_names(), open=e.open)
        for e in register.entries.values()
    ]
    try:
        result = diff_agreements(compile_unverified(old_doc), compile_unverified(new_doc), datasets)
    except BrokerError as e:
        raise _fail(e.detail) from e
    rows = result.rows()
    changes = diff_documents(old_doc, new_doc)
    if as_json:
        typer.echo(json.dumps({"changes": diff_json(changes), "permissions": rows}, indent=2))
        return
    if not changes:
        typer.echo("no difference")
        return
    typer.echo("Changes:")
    for change in changes:
        typer.echo(f"  {change.line()}")
    if not rows:
        typer.echo("no permission gained or lost")
        return
    typer.echo("Permissions gained (+) and lost (-):")
    for row in rows:
        sign = "+" if row["change"] == "gained" else "-"
        extra = " (break-glass)" if row["break_glass"] else ""
        if row["identity"] != "verified":
            extra += f" (identity: {row['identity']})"
        typer.echo(
            f"{sign} {row['party']:<28} {row['dataset']:<26} {row['purpose']:<32} "
            f"{row['field']}{extra}"
        )


@app.command("impact")
def impact_cmd(
    draft: Annotated[Path, typer.Option("--draft", help="The draft agreement (YAML, unsigned).")],
    days: Annotated[int, typer.Option("--days", help="Replay the last DAYS days (1-90).")] = 30,
    party: Annotated[
        str | None,
        typer.Option("--party", help="Show other parties' requests as counts only [all detail]."),
    ] = None,
    root: RootOpt = None,
    demo: DemoOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """What DRAFT would change: the requests logged over the last DAYS days replayed against it.

    Newly allowed and denied requests, fields newly released or withheld, by party and role, and
    the matrix of what could be asked. Runs as a job (kept with the API's) and is logged as a
    simulation. Exit 0 when the run completes, 1 when the draft is refused, 2 otherwise.
    """
    from broker.agreements.draft_text import parse_draft
    from broker.audit.factory import open_log
    from broker.exchange.impact_jobs import ImpactJobs, Viewer, check_days

    ctx = _context(demo)
    settings = load_settings()
    try:
        check_days(days)
        text = draft.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _fail(f"cannot read the draft: {e}") from e
    except BrokerError as e:
        raise _fail(e.detail) from e
    result = _load(ctx, root or ctx.default_root, None)
    try:
        doc = parse_draft(text, register=result.register, known_parties=ctx.known_parties)
    except InvalidInput as e:
        for problem in e.problems:
            typer.echo(f"{draft}: {problem.location}: {problem.message}", err=True)
        raise _fail(e.detail, 1) from e
    engine = build_engine(settings.database_url, pooled=False)
    try:
        jobs = ImpactJobs(
            engine,
            open_log(settings, engine),
            settings.policy_dir,
            lambda: result,
            lambda: int(dt.datetime.now(dt.UTC).timestamp() * 1000),
        )
        viewer = Viewer(party or "cli", "cli", party is None)
        job = jobs.start(viewer, doc, days)
        jobs.run(job, viewer, doc, days)
        outcome = jobs.get(job, viewer)
    except BrokerError as e:
        raise _fail(e.detail) from e
    except SQLAlchemyError as e:
        raise _fail(f"database unavailable or not migrated: {type(e).__name__}") from e
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(outcome, indent=2))
    else:
        _print_impact(outcome)
    raise typer.Exit(0 if outcome["status"] == "done" else 2)


def _print_impact(outcome: dict[str, Any]) -> None:
    d = outcome["draft"]
    typer.echo(
        f"impact of {d['id']} v{d['version']} over {outcome['days']} days: {outcome['status']}"
    )
    if outcome["error"]:
        typer.echo(f"  {outcome['error']}")
        return
    r = outcome["result"]
    t = r["totals"]
    typer.echo(
        f"  requests replayed: {t['requests']}  newly allowed: {t['newly_allowed']}  "
        f"newly denied: {t['newly_denied']}  undetermined: {t['undetermined']}"
    )
    for g in r["by_party_and_role"]:
        who = f"{g['party']} / {g['role'] or '(any role)'}" if g["detailed"] else g["party"]
        typer.echo(
            f"  {who}: {g['requests']} requests, +{g['newly_allowed']} allowed, "
            f"-{g['newly_denied']} denied, {g['undetermined']} undetermined"
        )
        for name, n in g.get("fields_newly_released", {}).items():
            typer.echo(f"    + {name} released in {n}")
        for name, n in g.get("fields_newly_withheld", {}).items():
            typer.echo(f"    - {name} withheld in {n}")
    changed = [row for row in r["matrix"] if row["change"] != "unchanged"]
    typer.echo(f"  what could be asked: {len(changed)} change(s)")
    for row in changed:
        sign = "+" if row["change"] == "gained" else "-"
        typer.echo(f"    {sign} {row['party']} {row['role']} {row['dataset']} {row['field']}")
