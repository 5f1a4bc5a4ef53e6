"""`tokenbook check`: the data-quality suites over loaded dates (owner: ingestion/quality.py)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

import typer

from ingestion.quality_thresholds import ThresholdsError, load_thresholds
from tokenbook.commands.common import (
    ConfigDirOpt,
    WarehouseOpt,
    fail,
    parse_date,
    refuse_future,
    resolve,
)
from tokenbook.exitcodes import CONFIG_INVALID, INPUT_REFUSED, QUALITY_FAILED


def dates_of(day: date | None, first: date | None, last: date | None) -> list[date]:
    """The dates one of ``--date`` or ``--from``/``--to`` names (a usage error otherwise)."""
    if day is not None and (first is not None or last is not None):
        raise typer.BadParameter("give --date, or --from and --to, not both")
    if day is not None:
        return [day]
    if first is None or last is None:
        raise typer.BadParameter("give --date YYYY-MM-DD, or --from YYYY-MM-DD --to YYYY-MM-DD")
    if last < first:
        raise typer.BadParameter(f"--to {last} is before --from {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def check(
    date_: Annotated[str | None, typer.Option("--date", help="The load date to check.",
                                              show_default=False)] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First load date to check.",
                                                  show_default=False)] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last load date to check.",
                                                show_default=False)] = None,
    warehouse: WarehouseOpt = None,
    config_dir: ConfigDirOpt = None,
) -> None:
    """Run the data-quality suites (Great Expectations) over what was loaded for the dates,
    each date against its own history; store the results in raw.validation_results.

    Thresholds: quality_thresholds.csv in the configuration folder (--config-dir), else the
    defaults. Exits 0 when every expectation passed, 3 when one failed or a suite has no
    result, 4 when quality_thresholds.csv is invalid, 2 for a date in the future (nothing is
    stored)."""
    from ingestion.quality import check_dates  # duckdb: imported when the command runs

    dates = dates_of(parse_date(date_), parse_date(date_from, "--from"),
                     parse_date(date_to, "--to"))
    refuse_future(dates[-1], "--date" if date_ else "--to")
    settings, wh = resolve(warehouse, config_dir=config_dir)
    try:
        thresholds = load_thresholds(folder=settings.resolved_config_dir)
    except ThresholdsError as exc:
        raise fail(str(exc), code=CONFIG_INVALID) from exc
    if not wh.is_bigquery and not wh.path.exists():
        raise fail(f"no warehouse at {wh.path}: load the dates first (`tokenbook ingest "
                   "gateway ...`), or pass --warehouse", INPUT_REFUSED)
    result = check_dates(settings, dates, thresholds)
    print_result(result)
    if not result.success:
        raise typer.Exit(QUALITY_FAILED)


def print_result(result) -> None:
    """Each failed expectation (observed, expected range, what to look at), the suites with no
    result, the not-evaluable ones counted, and the verdict."""
    from rich.console import Console  # rich: imported when printing, not at CLI start

    console = Console(highlight=False)
    span = (f"{result.dates[0]}" if len(result.dates) == 1
            else f"{result.dates[0]} .. {result.dates[-1]}")
    n = len(result.outcomes)
    failed = result.failures()
    skipped = result.not_evaluable()
    for line in result.failure_lines():
        console.print(f"[red]FAILED[/red] {line}", soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True)
    if skipped:  # why, commonest first: too little history is one reason, not the only one
        by_suite: dict[str, int] = {}
        by_reason: dict[str, int] = {}
        for o in skipped:
            by_suite[o.suite] = by_suite.get(o.suite, 0) + 1
            reason = (o.observed_value or "").removeprefix("not evaluable: ")
            by_reason[reason] = by_reason.get(reason, 0) + 1
        reasons = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        more = f"; {len(reasons) - 3} other reasons" if len(reasons) > 3 else ""
        console.print(
            f"not evaluable ({len(skipped)}): "
            + "; ".join(f"{r} x{n}" for r, n in reasons[:3]) + more + " (by suite: "
            + ", ".join(f"{k} x{v}" for k, v in sorted(by_suite.items()))
            + "; observed_value in raw.validation_results says why for each)", soft_wrap=True)
    verdict = "[green]passed[/green]" if result.success else "[red]FAILED[/red]"
    console.print(
        f"data quality {span}: {verdict} ({n - len(failed) - len(skipped)} passed, "
        f"{len(failed)} failed, {len(skipped)} not evaluable, "
        f"{len(result.missing_suites())} suites without results)")
