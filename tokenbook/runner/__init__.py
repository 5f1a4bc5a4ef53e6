"""The main job, ``tokenbook run``: demo data -> ingest -> dbt build -> forecast -> report ->
summary.

``run_plan`` (``main.py``) runs one of two paths: one night (``night.py``) calls the same step
functions the Airflow DAG calls (``tokenbook.orchestration``); a backfill or the demo
(``batch.py``) loads every file first and then builds the models ONCE, which is what makes a
120-day history take minutes. ``summary.py`` prints what landed, read back from the marts;
``plan.py`` holds what was asked and what was done, ``console.py`` the terminal output.
"""

from __future__ import annotations

from tokenbook.runner.main import run_plan
from tokenbook.runner.plan import RunPlan, RunResult

__all__ = ["RunPlan", "RunResult", "run_plan"]
