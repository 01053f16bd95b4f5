"""``broker audit``: verify, export, redact, check-receipt, checkpoint.

Exit codes: 0 good, 1 the check failed (tampered log, bad receipt), 2 usage or environment error.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from broker.audit.checkpoint import load_public_key
from broker.audit.errors import AuditError, ReceiptError
from broker.audit.export import Format
from broker.audit.export import export as export_entries
from broker.audit.factory import log_origin, open_log, public_log_key
from broker.audit.receipts import ReceiptPending
from broker.audit.receipts import check_receipt as check_receipt_offline
from broker.audit.redact import redact_before
from broker.audit.verify import VerifyReport, read_checkpoint_files, stored_origin, verify_log
from broker.core.errors import BrokerError
from broker.db.engine import build_engine
from broker.settings import load_settings

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
err = Console(stderr=True)
PROGRESS_FROM_ENTRIES = 50_000


def _fail_environment(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def parse_date_ms(text: str) -> int:
    """``2026-01-31`` (midnight UTC) or an ISO 8601 time; a time without a zone is UTC."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as e:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date or time") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _print_report(report: VerifyReport, as_json: bool, origin: str, source: str) -> None:
    if as_json:
        typer.echo(json.dumps({**report.to_json(), "origin": origin}, indent=2))
        return
    typer.echo(f"log origin checked: {origin} (from {source})")
    if report.ok:
        typer.echo(
            f"intact: {report.entries_checked} entries, {report.checkpoints_checked} checkpoints,"
            f" {report.external_checkpoints_checked} checkpoints from other parties"
        )
        return
    first = report.first_bad_entry
    typer.echo(f"TAMPERED: first bad entry {first if first is not None else '(none named)'}")
    if report.lost_entries:
        typer.echo(
            f"LOST TAIL: {report.lost_entries} entries a checkpoint covers are not in the log"
            f" (it has {report.entries_checked})"
        )
    for problem in report.problems:
        typer.echo(f"  - {problem.message}")


@app.command()
def verify(
    against: Annotated[
        list[Path] | None,
        typer.Option(
            "--against",
            help="A checkpoint file kept by another party, or a folder of them (repeatable).",
        ),
    ] = None,
    log_key: Annotated[
        Path | None, typer.Option("--log-key", help="The log's public key PEM.")
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option(
            "--origin",
            help="The log's origin to check checkpoints against (default: the one stored with"
            " the log, in its first checkpoint).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Re-verify the whole log: exit 0 intact, 1 with the first bad entry."""
    settings = load_settings()
    try:
        public = load_public_key(log_key) if log_key else public_log_key(settings)
        files = [f for p in against or [] for f in (sorted(p.iterdir()) if p.is_dir() else [p])]
        held = read_checkpoint_files([str(f) for f in files if f.is_file()])
    except (BrokerError, OSError, ValueError, KeyError) as e:
        raise _fail_environment(str(e)) from e
    engine = build_engine(settings.database_url, pooled=False)
    try:
        if origin is not None:
            checked, source = origin, "--origin"
        elif (kept := stored_origin(engine)) is not None:
            checked, source = kept, "the log's first checkpoint"
        else:
            checked, source = (
                log_origin(settings.public_url),
                "BROKER_PUBLIC_URL (no checkpoint yet)",
            )
        with Progress(
            TextColumn("verifying"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} entries"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("verify", total=None, visible=False)

            def step(done: int, total: int) -> None:
                if total >= PROGRESS_FROM_ENTRIES:
                    progress.update(task, completed=done, total=total, visible=True)

            report = verify_log(
                engine,
                public,
                origin=checked,
                against=held,
                progress=step,
            )
    except Exception as e:
        raise _fail_environment(f"cannot read the log: {e}") from e
    finally:
        engine.dispose()
    _print_report(report, as_json, checked, source)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def export(
    from_: Annotated[str | None, typer.Option("--from", help="From this date/time (UTC).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Until this time (exclusive).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    out: Annotated[Path | None, typer.Option("--out", help="File (default stdout).")] = None,
) -> None:
    """Evidence for auditors: entries with what checks each one offline."""
    if fmt not in ("jsonl", "csv"):
        raise typer.BadParameter("--format must be jsonl or csv")
    chosen: Format = "csv" if fmt == "csv" else "jsonl"
    from_ms = parse_date_ms(from_) if from_ else None
    to_ms = parse_date_ms(to) if to else None
    settings = load_settings()
    engine = build_engine(settings.database_url, pooled=False)
    try:
        log = open_log(settings, engine)
        if out is None:
            count = export_entries(log, sys.stdout, fmt=chosen, from_ms=from_ms, to_ms=to_ms)
        else:
            with out.open("w", encoding="utf-8", newline="") as f:
                count = export_entries(log, f, fmt=chosen, from_ms=from_ms, to_ms=to_ms)
    except BrokerError as e:
        raise _fail_environment(e.detail) from e
    finally:
        engine.dispose()
    err.print(f"exported {count} entries")


@app.command()
def redact(
    before: Annotated[str, typer.Option("--before", help="Redact entries older than this.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Remove personal values and salts of older entries; proofs and verify keep working."""
    before_ms = parse_date_ms(before)
    settings = load_settings()
    engine = build_engine(settings.database_url, pooled=False)
    try:
        result = redact_before(open_log(settings, engine), before_ms, actor="cli")
    except BrokerError as e:
        raise _fail_environment(e.detail) from e
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        typer.echo(
            f"redacted {result.entries_redacted} entries older than {before}"
            f" (logged as entry {result.redaction_index})"
        )


def _read_checkpoint_file(path: Path) -> str:
    """A signed note as ``broker audit checkpoint`` prints it, or the JSON of
    ``GET /v1/audit/checkpoint`` (its ``note``)."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        note = json.loads(text).get("note")
        if not isinstance(note, str):
            raise ValueError(f"{path} holds no checkpoint note")
        return note
    return text


def _read_proof_file(path: Path) -> tuple[list[str], int | None]:
    """The JSON of ``GET /v1/audit/proof/inclusion``: its hashes and the tree size it is for."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    hashes = doc.get("proof") if isinstance(doc, dict) else None
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise ValueError(f"{path} holds no inclusion proof (a 'proof' list of hex hashes)")
    size = doc.get("tree_size")
    return hashes, size if isinstance(size, int) else None


@app.command("check-receipt")
def check_receipt(
    file: Annotated[Path, typer.Argument(help="A receipt (JSON).")],
    log_key: Annotated[Path, typer.Option("--log-key", help="The log's public key PEM.")],
    record: Annotated[
        Path | None, typer.Option("--record", help="The record received (JSON), to check too.")
    ] = None,
    checkpoint_file: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="For a pending receipt: the signed checkpoint (note, or checkpoint JSON).",
        ),
    ] = None,
    proof_file: Annotated[
        Path | None,
        typer.Option(
            "--proof", help="For a pending receipt: its inclusion proof (the proof URL's JSON)."
        ),
    ] = None,
    origin: Annotated[
        str | None, typer.Option("--origin", help="The log's origin the checkpoint must name.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify a receipt offline: exit 0 if the exchange is provably in the signed log."""
    try:
        public = load_public_key(log_key)
        receipt = json.loads(file.read_text(encoding="utf-8"))
        received = json.loads(record.read_text(encoding="utf-8")) if record else None
        note = _read_checkpoint_file(checkpoint_file) if checkpoint_file else None
        hashes, proof_size = _read_proof_file(proof_file) if proof_file else (None, None)
    except (BrokerError, OSError, ValueError) as e:
        raise _fail_environment(str(e)) from e
    if isinstance(receipt, dict) and isinstance(receipt.get("receipt"), dict):
        receipt = receipt["receipt"]  # an exchange answer saved whole
    try:
        if not isinstance(receipt, dict):
            raise ReceiptError("the file does not hold a receipt object")
        result = check_receipt_offline(
            receipt,
            public,
            origin=origin,
            record=received,
            checkpoint=note,
            inclusion_proof=hashes,
            proof_tree_size=proof_size,
        )
    except AuditError as e:
        if as_json:
            typer.echo(json.dumps({"ok": False, "reason": e.detail}))
        else:
            typer.echo(f"{'PENDING' if isinstance(e, ReceiptPending) else 'INVALID'}: {e.detail}")
        raise typer.Exit(1) from e
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    what = (
        f"exchange {result.exchange_id} is entry {result.leaf_index}"
        if result.leaf_checked
        else f"entry {result.leaf_index} (leaf hash {result.leaf_hash}, exchange"
        f" {result.exchange_id})"
    )
    typer.echo(
        f"valid: {what} of the signed tree of size {result.tree_size} of log {result.origin}"
        + (", and the record matches its digest" if result.record_checked else "")
    )


@app.command()
def checkpoint(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Sign the current tree head now and print it (parties keep these)."""
    settings = load_settings()
    engine = build_engine(settings.database_url, pooled=False)
    try:
        cp = open_log(settings, engine).checkpoint_now()
    except BrokerError as e:
        raise _fail_environment(e.detail) from e
    finally:
        engine.dispose()
    typer.echo(json.dumps(cp.to_json()) if as_json else cp.note, nl=not cp.note.endswith("\n"))
