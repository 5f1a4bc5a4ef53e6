"""Quality evals the demo company ran: ``out_dir/evals/evals.csv``.

One row per eval run: ``eval_date, feature, provider, model, eval_name, score, passed,
quality_bar, cases`` (model as in the price book, provider canonical). What is planted:
- every model a feature serves in production passed its golden-set eval before the period;
- cheaper candidate models were evaluated during the period: some pass the feature's quality
  bar (routing opportunities), some fail;
- the ``model_switch`` feature's new model has no eval before the switch: its only eval comes
  a few days after the switch, and it scores below the bar.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import numpy as np

from tokenbook.demo.catalog import FEATURES, MODEL_INDEX, MODELS

# The features seed's quality_bar (dbt_project/seeds/features.csv; a test pins them).
QUALITY_BAR = {
    "support_chat": 0.80,
    "doc_summarizer": 0.75,
    "code_review": 0.85,
    "search_answers": 0.70,
    "email_drafter": 0.70,
    "contract_extractor": 0.90,
    "meeting_notes": 0.75,
}
# Cheaper models each feature's team has looked at.
CANDIDATES = {
    "support_chat": ("gpt-4o-mini", "gemini-2.5-flash-lite"),
    "doc_summarizer": ("gemini-2.5-flash-lite", "gpt-4.1-nano"),
    "code_review": ("gpt-5-mini", "gemini-2.5-flash"),
    "search_answers": ("gemini-2.5-flash-lite", "gpt-4.1-nano"),
    "email_drafter": ("gpt-4.1-nano", "gemini-2.5-flash-lite"),
    "contract_extractor": ("gpt-4.1", "gemini-2.5-flash"),
    "meeting_notes": ("gpt-4o-mini", "gemini-2.5-flash-lite"),
}
COLUMNS = ("eval_date", "feature", "provider", "model", "eval_name", "score", "passed",
           "quality_bar", "cases")


def build_evals(seed: int, start: date, days: int, events: dict) -> tuple[list[dict], dict]:
    """Eval rows (sorted, all dated on or before the last day) and a summary for the manifest."""
    rng = np.random.default_rng([seed, 60])
    sw = events["model_switch"]
    switch_date = date.fromisoformat(sw["date"])
    rows: list[dict] = []

    def add(day: date, feature: str, key: str, name: str, passed: bool) -> None:
        bar = QUALITY_BAR[feature]
        margin = float(rng.uniform(0.02, 0.07))
        score = min(0.99, bar + margin) if passed else bar - margin
        m = MODELS[MODEL_INDEX[key]]
        rows.append({
            "eval_date": day.isoformat(), "feature": feature, "provider": m.provider,
            "model": m.catalog_model, "eval_name": name, "score": f"{score:.3f}",
            "passed": "true" if passed else "false", "quality_bar": f"{bar:.2f}",
            "cases": int(rng.integers(150, 600)),
        })

    routing: list[dict] = []
    for f in FEATURES:
        production = {k for k, _ in f.standard_models if MODELS[MODEL_INDEX[k]].catalog_model}
        production.add(f.complex_model)
        for key in sorted(production):
            add(start - timedelta(days=int(rng.integers(10, 40))), f.name, key,
                f"{f.name}-golden-v1", True)
        for key in CANDIDATES[f.name]:
            if f.name == sw["feature"] and key == sw["to_model_key"]:
                continue  # the switch happens with no eval of the new model beforehand
            if key in production:
                continue
            passed = bool(rng.random() < 0.5)
            day = start + timedelta(days=int(rng.integers(days // 10, (2 * days) // 3)))
            add(day, f.name, key, f"{f.name}-golden-v1", passed)
            if passed:
                routing.append({"feature": f.name, "model": MODELS[MODEL_INDEX[key]].catalog_model,
                                "eval_date": day.isoformat()})
    end = start + timedelta(days=days - 1)
    after = min(end, switch_date + timedelta(days=int(rng.integers(4, 9))))
    add(after, sw["feature"], sw["to_model_key"], f"{sw['feature']}-golden-v1", False)
    rows.sort(key=lambda r: (r["eval_date"], r["feature"], r["model"]))
    summary = {
        "path": "evals/evals.csv",
        "columns": list(COLUMNS),
        "rows": len(rows),
        "passing_cheaper_candidates": routing,
        "switch_eval": {"feature": sw["feature"], "model": sw["to_model"],
                        "first_eval_date": after.isoformat(), "passed": False,
                        "evals_before_switch": 0},
    }
    return rows, summary


def evals_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
