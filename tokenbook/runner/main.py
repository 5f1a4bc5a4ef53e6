"""``tokenbook run``: a batch (the demo, a backfill) or one night, then the summary."""

from __future__ import annotations

import time
from dataclasses import replace

from core.settings import Settings
from core.warehouse import Warehouse
from tokenbook.orgconfig import read_config
from tokenbook.orgconfig.load import describe
from tokenbook.runner.batch import run_batch
from tokenbook.runner.console import console
from tokenbook.runner.night import run_night
from tokenbook.runner.plan import RunPlan, RunResult
from tokenbook.runner.summary import print_summary


def run_plan(plan: RunPlan, settings: Settings, wh: Warehouse) -> RunResult:
    result = RunResult()
    t0 = time.perf_counter()
    console.print(f"[bold]tokenbook[/] on {wh.location}", soft_wrap=True)
    if plan.demo and not settings.config_dir:
        # The demo is one organisation with its own configuration folder.
        settings = replace(settings, config_dir=str(plan.data_dir / "config"))
    if not plan.demo:
        # Refuse to start on an invalid configuration (ConfigInvalid names file, line, column).
        console.print(describe(read_config(settings.resolved_config_dir)))
    if plan.date is not None:
        run_night(plan, settings, result)
    else:
        run_batch(plan, settings, wh, result)
        result.steps["total"] = time.perf_counter() - t0
    print_summary(wh, result)
    return result
