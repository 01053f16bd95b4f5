"""Reports: monthly figures per agreement and per period, as CSV and as a printable page with
server-drawn charts (the figures a council's audit committee receives)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from broker.agreements.break_glass import review_days
from broker.audit.reviews import review_counts
from broker.console import queries
from broker.console.access import Permission
from broker.console.accounts import Session
from broker.console.charts import Series, stacked_bars
from broker.console.deps import ConsoleDep, render, require
from broker.core.errors import InvalidInput, NotFound

router = APIRouter()
ReportsSession = Annotated[Session, require(Permission.REPORTS)]
MAX_MONTHS = 36


def parse_month(text: str | None, default: dt.date) -> dt.date:
    """``YYYY-MM`` to the first of that month. Raises InvalidInput."""
    if not text:
        return queries.month_start(default)
    try:
        year, month = text.split("-")
        return dt.date(int(year), int(month), 1)
    except ValueError as e:
        raise InvalidInput("a month is written YYYY-MM") from e


def period(start: str | None, end: str | None) -> list[dt.date]:
    today = dt.datetime.now(dt.UTC).date()
    last = parse_month(end, today)
    first = parse_month(start, queries.add_months(last, -11))
    if first > last:
        raise InvalidInput("the period starts after it ends")
    months = [first]
    while months[-1] < last:
        months.append(queries.add_months(months[-1], 1))
    if len(months) > MAX_MONTHS:
        raise InvalidInput(f"a report covers at most {MAX_MONTHS} months")
    return months


def _figures(
    console: ConsoleDep, session: Session, agreement: str | None, months: list[dt.date]
) -> dict[str, queries.AgreementFigures]:
    visible = console.visible_agreement_ids(session.account)
    ids = [str(a) for a in visible]
    if agreement:
        if agreement not in ids:
            raise NotFound(f"no agreement {agreement} that you may see")
        ids = [agreement]
    return queries.monthly_figures(console.engine, ids, months)


def _read_figures(
    console: ConsoleDep,
    session: Session,
    what: str,
    agreement: str | None,
    start: str | None,
    end: str | None,
) -> tuple[list[dt.date], dict[str, queries.AgreementFigures]]:
    """The months asked for and their figures, the read logged first (as ``what``)."""
    months = period(start, end)
    console.record_read(
        session.account,
        what,
        {"agreement": agreement, "start": months[0].isoformat(), "end": months[-1].isoformat()},
    )
    return months, _figures(console, session, agreement, months)


@router.get("/reports", response_class=HTMLResponse)
def report(
    request: Request,
    console: ConsoleDep,
    session: ReportsSession,
    agreement: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> Response:
    months, figures = _read_figures(console, session, "report", agreement, start, end)
    totals = [queries.MonthFigures(m) for m in months]
    for f in figures.values():
        for total, month in zip(totals, f.months, strict=True):
            total.allow += month.allow
            total.deny += month.deny
            total.other += month.other
            total.break_glass += month.break_glass
    labels = [m.label for m in totals]
    charts = [
        stacked_bars(
            "Exchanges by month: allowed and denied",
            labels,
            [
                Series("Allowed", [t.allow for t in totals]),
                Series("Denied", [t.deny for t in totals]),
            ],
        ),
        stacked_bars(
            "Break-glass exchanges by month",
            labels,
            [Series("Break-glass", [t.break_glass for t in totals])],
        ),
    ]
    agreement_ids = console.visible_agreement_ids(session.account)
    reviews = review_counts(
        console.engine,
        review_days(console.agreements()),
        sorted(figures),
        since_ms=queries.month_ms(months[0]),
        until_ms=queries.month_ms(queries.add_months(months[-1], 1)),
        now_ms=int(console.services.clock() * 1000),
    )
    return render(
        request,
        "report.html",
        {
            "reviews": sorted(reviews.items()),
            "figures": sorted(figures.values(), key=lambda f: f.agreement_id),
            "totals": totals,
            "charts": charts,
            "agreement": agreement,
            "agreement_ids": agreement_ids,
            "start": months[0].strftime("%Y-%m"),
            "end": months[-1].strftime("%Y-%m"),
        },
    )


@router.get("/reports.csv")
def report_csv(
    console: ConsoleDep,
    session: ReportsSession,
    agreement: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> Response:
    months, figures = _read_figures(console, session, "report.csv", agreement, start, end)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        ["agreement", "month", "exchanges", "allowed", "denied", "other", "break_glass"]
    )
    for f in sorted(figures.values(), key=lambda f: f.agreement_id):
        for m in f.months:
            writer.writerow(
                [
                    f.agreement_id,
                    m.month.strftime("%Y-%m"),
                    m.total,
                    m.allow,
                    m.deny,
                    m.other,
                    m.break_glass,
                ]
            )
    name = f"exchanges-{agreement or 'all'}-{months[0]:%Y-%m}-{months[-1]:%Y-%m}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
