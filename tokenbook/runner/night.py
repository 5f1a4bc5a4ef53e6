"""``tokenbook run --date D``: the nightly DAG's steps for one logical date, in order, outside
Airflow (the same functions, ``tokenbook.orchestration``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.settings import Settings
from tokenbook import orchestration as o
from tokenbook.runner.console import step
from tokenbook.runner.plan import RunPlan, RunResult


def run_night(plan: RunPlan, settings: Settings, result: RunResult) -> None:
    """Each step of the DAG for ``plan.date``; the report and exports it wrote in ``result``."""
    assert plan.date is not None
    inputs = o.RunInputs.from_env(gateway_path=str(plan.data_dir / "gateway"),
                                  billing_path=str(plan.data_dir / "billing"))
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("load_config", lambda: o.load_org_config(plan.date, settings)),
        ("ingest_gateway", lambda: o.ingest_gateway_day(plan.date, settings, inputs)),
        ("ingest_billing", lambda: o.ingest_billing_day(plan.date, settings, inputs)),
        ("data_quality", lambda: o.check_data_quality(plan.date, settings)),
        ("quality_gate", lambda: o.check_quality(plan.date, settings)),
        ("dbt_build", lambda: o.build_models(plan.date, settings)),
        ("score_anomalies", lambda: o.score_anomalies(plan.date, settings)),
    ]
    if plan.forecast and o.is_refit_day(plan.date):
        steps.append(("refit_forecast", lambda: o.refit_forecast(plan.date, settings)))
    steps.append(("publish_outputs", lambda: o.publish_outputs(plan.date, settings, inputs)))
    for i, (name, fn) in enumerate(steps, 1):
        with step(result, name, f"{i}/{len(steps)} {name} for {plan.date}"):
            result.facts[name] = fn()
    written = list((result.facts.get("publish_outputs") or {}).get("written", []))
    report = next((w for w in written if w.endswith(".html")), None)
    if plan.report_path and report:
        # --report names where the HTML report goes (the month's copy stays under the out dir)
        plan.report_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report, plan.report_path)
        report = str(plan.report_path)
    if report:
        result.facts["report"] = str(Path(report).resolve())
    result.facts["outputs"] = [str(Path(w).resolve()) for w in written if w.endswith((".csv",
                                                                                 ".parquet"))]
    result.as_of = plan.date
