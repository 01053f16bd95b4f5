"""``broker register``: list, show and verify the Information Asset Register's entries, and a
party's Record of Processing Activities (UK GDPR Art. 30).

Exit codes as ``broker agreements``: 0 good, 1 the check failed (an entry that does not verify),
2 usage or environment. ``--demo`` uses the demo parties and keys, in memory.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from broker.agreements.authoring import read_document
from broker.agreements.errors import DocumentInvalidError
from broker.agreements.loader import load_register, trust_of
from broker.agreements.register import DatasetEntry
from broker.agreements.register_view import dataset_view, entry_summary, ropa, ropa_csv
from broker.agreements.status import uk_date
from broker.cli.agreements import AtOpt, DemoOpt, JsonOpt, RootOpt, _context, _fail, _load, _now

app = typer.Typer(help="The Information Asset Register.", no_args_is_help=True)


@app.command("list")
def list_cmd(root: RootOpt = None, demo: DemoOpt = False, as_json: JsonOpt = False) -> None:
    """Every verified entry: id, owner, classification, open or not, retention."""
    ctx = _context(demo)
    result = _load(ctx, root or ctx.default_root, None)
    register = result.register
    rows = [
        entry_summary(register.entries[k], register.digests.get(k))
        for k in sorted(register.entries)
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'DATASET':<28} {'OWNER':<30} {'CLASSIFICATION':<19} OPEN  RETENTION")
    for r in rows:
        typer.echo(
            f"{r['id']:<28} {r['owner']:<30} {r['classification']:<19} "
            f"{'yes' if r['open'] else 'no':<5} {r['retention']['period']}"
        )


@app.command("show")
def show_cmd(
    dataset: Annotated[str, typer.Argument(help="The dataset id.")],
    root: RootOpt = None,
    demo: DemoOpt = False,
    at: AtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One entry: owner, asset owner role, classification, retention, lawful bases, open or not,
    the agreements that use it, next review date (usage counts: the API or the console)."""
    ctx = _context(demo)
    result = _load(ctx, root or ctx.default_root, at)
    entry = result.register.get(dataset)
    if entry is None:
        raise _fail(f"no verified register entry {dataset!r}", 1)
    view = dataset_view(
        entry, result.register.digests.get(dataset), result.agreements, {}, uk_date(_now(at))
    )
    for row in view["agreements"]:
        row.pop("exchanges", None)
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return
    retention = view["retention"]
    review = view["next_review"]
    typer.echo(f"{view['id']}: {view['title']}")
    typer.echo(f"  owner: {view['owner']} (asset owner: {view['asset_owner_role']})")
    typer.echo(
        f"  classification: {view['classification']}, special category: {view['special_category']}"
    )
    typer.echo(f"  open: {'yes' if view['open'] else 'no'}")
    typer.echo(
        f"  retention: {retention['period']}"
        + (f" ({retention['basis']})" if retention["basis"] else "")
    )
    typer.echo(
        f"  lawful bases: {', '.join(view['lawful_bases']) or 'none (no agreement uses it)'}"
    )
    flag = " OVERDUE" if review["overdue"] else ""
    typer.echo(f"  next review: {review['date'] or 'not recorded'} ({review['source']}){flag}")
    for row in view["agreements"]:
        typer.echo(
            f"  - {row['id']} v{row['version']} ({row['status']}): flows {', '.join(row['flows'])}"
        )


@app.command("verify")
def verify_cmd(
    files: Annotated[list[Path], typer.Argument(help="Register entry files to verify.")],
    demo: DemoOpt = False,
) -> None:
    """Check each entry's schema and its owner's signature (read beside it, with the entries of
    its directory: an id filed twice counts for nothing); exit 0 only if every one verifies."""
    ctx = _context(demo)
    trust = trust_of(ctx.store, demo=ctx.demo)
    bad = 0
    for file in files:
        try:
            doc = read_document(file)
        except DocumentInvalidError as e:
            typer.echo(str(e))
            bad += 1
            continue
        if not isinstance(doc, DatasetEntry):
            typer.echo(
                f"{file}: not a register entry (kind: {doc.kind}): use broker agreements verify"
            )
            bad += 1
            continue
        loaded = load_register(file.parent, trust, ctx.known_parties)
        if loaded.register.digests.get(doc.id) == doc.digest():
            typer.echo(f"{file}: {doc.id} verified, signed by its owner {doc.owner}")
            continue
        reason = loaded.unverified.get(doc.id, "not found among the register's entries")
        typer.echo(f"{file}: {doc.id} counts for nothing: {reason}")
        bad += 1
    raise typer.Exit(1 if bad else 0)


@app.command("ropa")
def ropa_cmd(
    party: Annotated[str, typer.Option("--party", help="The party whose record to print.")],
    root: RootOpt = None,
    demo: DemoOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON.")] = False,
) -> None:
    """A party's Record of Processing Activities (UK GDPR Art. 30): one activity per agreement
    flow it provides or receives under; what the register lacks is "not recorded"."""
    ctx = _context(demo)
    if party not in ctx.known_parties:
        raise _fail(f"no party {party!r}", 1)
    result = _load(ctx, root or ctx.default_root, None)
    rows = ropa(party, result.register, result.agreements, {})
    if as_csv:
        typer.echo(ropa_csv(rows), nl=False)
        return
    today = dt.datetime.now(dt.UTC).date().isoformat()
    typer.echo(json.dumps({"party": party, "generated_on": today, "activities": rows}, indent=2))
