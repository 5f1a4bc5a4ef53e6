"""`tokenbook run`: the main job.

- ``tokenbook run --demo``: write the demo organisation, then backfill its whole history as ONE
  batch (ingest every file, one dbt build, one forecast, the report) and print a summary.
- ``tokenbook run --date D``: one night, the same steps the Airflow DAG runs for D.
- ``tokenbook run --from A --to B``: a backfill of the files dated A..B as one batch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from tokenbook.commands.common import (
    DEMO_MIN_DAYS,
    ConfigDirOpt,
    WarehouseOpt,
    config_failure,
    fail,
    parse_date,
    refuse_dev_key,
    refuse_future,
    resolve,
)
from tokenbook.dbt import DbtError
from tokenbook.errors import describe_failure, explain
from tokenbook.exitcodes import INPUT_REFUSED, QUALITY_FAILED
from tokenbook.orgconfig import ConfigInvalid

DEFAULT_DEMO_DIR = Path("demo_data")


def run(
    demo: Annotated[
        bool, typer.Option("--demo", help="Generate the demo organisation first and run on it.")
    ] = False,
    days: Annotated[
        int, typer.Option("--days", min=DEMO_MIN_DAYS, help="Demo: days of history.")
    ] = 120,
    end: Annotated[
        str | None, typer.Option("--end", help="Demo: last day YYYY-MM-DD (default: yesterday).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Demo: random seed.")] = 7,
    scale: Annotated[float, typer.Option("--scale", min=0.001, help="Demo: volume scale.")] = 1.0,
    run_date: Annotated[
        str | None, typer.Option("--date", help="Run one night for this logical date.")
    ] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="Backfill start date.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Backfill end date.")] = None,
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir",
            help="Folder with gateway/ (and billing/) files; the demo is written here.",
        ),
    ] = DEFAULT_DEMO_DIR,
    warehouse: WarehouseOpt = None,
    config_dir: ConfigDirOpt = None,
    skip_forecast: Annotated[
        bool, typer.Option("--skip-forecast", help="Do not fit forecasts (faster).")
    ] = False,
    report_path: Annotated[
        Path | None, typer.Option("--report", help="Where to write the HTML report.")
    ] = None,
) -> None:
    """Run the pipeline: ingest -> dbt build -> forecast and anomalies -> report -> summary."""
    # Imported when the command runs, not when the CLI starts: the run pulls pandas and
    # matplotlib (report, forecasts) and the orchestration pulls duckdb, which `tokenbook
    # --help` and every other command must not pay for.
    from tokenbook.orchestration import OrchestrationError, QualityGateFailed
    from tokenbook.runner import RunPlan, run_plan

    settings, wh = resolve(warehouse, config_dir=config_dir)
    if demo:
        # the demo organisation's ids are invented: the development key is fine there
        settings = dataclasses.replace(settings, allow_dev_key=True)
    else:
        refuse_dev_key(settings)
    d_one = parse_date(run_date, "--date")
    d_from, d_to = parse_date(date_from, "--from"), parse_date(date_to, "--to")
    if d_one and (d_from or d_to):
        raise fail("give either --date or --from/--to, not both")
    if (d_from is None) != (d_to is None):
        raise fail("a backfill needs both --from and --to")
    if d_from and d_to and d_from > d_to:
        raise fail(f"--from {d_from} is after --to {d_to}")
    # a night that has not begun: refused before anything runs (it would fail at ingest,
    # "no gateway file", after the setup)
    if d_one or d_to:
        refuse_future(d_one or d_to, "--date" if d_one else "--to",
                      "run nights that have begun (the last is today's, in UTC)")
    plan = RunPlan(
        data_dir=data_dir,
        demo=demo,
        demo_days=days,
        demo_end=parse_date(end, "--end"),
        demo_seed=seed,
        demo_scale=scale,
        date=d_one,
        date_from=d_from,
        date_to=d_to,
        forecast=not skip_forecast,
        report_path=report_path,
    )
    try:
        run_plan(plan, settings, wh)
    except ConfigInvalid as exc:
        raise config_failure(exc) from exc
    except Exception as exc:  # noqa: BLE001 - a known failure is one sentence, a bug exits 70
        if isinstance(exc, QualityGateFailed) or getattr(exc, "tests_only", 0):
            raise fail(describe_failure(exc), QUALITY_FAILED) from exc
        known = explain(exc)
        if known is not None:
            raise fail(known[1], known[0]) from exc
        # MissingInput is an OrchestrationError
        if isinstance(exc, DbtError | OrchestrationError | FileNotFoundError):
            raise fail(describe_failure(exc), INPUT_REFUSED) from exc
        raise  # the wrapper in tokenbook/cli.py: one line, the log file, exit 70
