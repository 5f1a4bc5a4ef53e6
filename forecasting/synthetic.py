"""Synthetic inputs for tests, the benchmark and trying things out: daily series with weekly
seasonality, trend, a launch step and a spike, and a small hand-made ``marts.fct_llm_calls``
with the contract's columns (docs/contracts.md)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from forecasting.config import KEY_COLUMNS
from forecasting.series import FRAME_COLUMNS


def synthetic_series(
    unique_id: str,
    end: date,
    days: int = 120,
    level: float = 100.0,
    trend_per_day: float = 0.3,
    weekly_amplitude: float = 0.25,
    noise: float = 0.08,
    launch_day: int | None = None,
    launch_lift: float = 0.5,
    spike_day: int | None = None,
    spike_factor: float = 4.0,
    seed: int = 0,
    metric: str = "spend",
    series_level: str = "total",
    **keys: str,
) -> pd.DataFrame:
    """A daily series with weekly seasonality (weekends low), trend, an optional launch step and
    spike, multiplicative log-normal noise. Day indices count from the first day (0-based)."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(end=pd.Timestamp(end), periods=days, freq="D")
    t = np.arange(days)
    weekend = (ds.day_of_week >= 5).astype(float)
    base = (level + trend_per_day * t) * (1 - weekly_amplitude * weekend)
    if launch_day is not None:
        base = base * np.where(t >= launch_day, 1 + launch_lift, 1.0)
    y = base * np.exp(rng.normal(0, noise, days))
    if spike_day is not None:
        y[spike_day] *= spike_factor
    out = pd.DataFrame({"unique_id": unique_id, "ds": ds, "y": y})
    out["series_level"] = series_level
    out["metric"] = metric
    for col in KEY_COLUMNS:
        out[col] = keys.get(col)
    return out[list(FRAME_COLUMNS)]


# (column, DuckDB type) of marts.fct_llm_calls as docs/contracts.md lists them.
FCT_LLM_CALLS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("call_id", "VARCHAR"),
    ("trace_id", "VARCHAR"),
    ("attempt", "INTEGER"),
    ("called_at", "TIMESTAMP"),
    ("call_date", "DATE"),
    ("call_week", "DATE"),
    ("call_month", "DATE"),
    ("provider", "VARCHAR"),
    ("provider_raw", "VARCHAR"),
    ("model", "VARCHAR"),
    ("catalog_model", "VARCHAR"),
    ("price_id", "VARCHAR"),
    ("feature", "VARCHAR"),
    ("customer_segment", "VARCHAR"),
    ("team", "VARCHAR"),
    ("cost_centre", "VARCHAR"),
    ("customer_id", "VARCHAR"),
    ("environment", "VARCHAR"),
    ("request_class", "VARCHAR"),
    ("api_key_id", "VARCHAR"),
    ("project_id", "VARCHAR"),
    ("input_tokens", "BIGINT"),
    ("uncached_input_tokens", "BIGINT"),
    ("cache_read_input_tokens", "BIGINT"),
    ("cache_write_input_tokens", "BIGINT"),
    ("cache_write_ttl", "VARCHAR"),
    ("output_tokens", "BIGINT"),
    ("reasoning_tokens", "BIGINT"),
    ("is_batch", "BOOLEAN"),
    ("service_tier", "VARCHAR"),
    ("status", "VARCHAR"),
    ("is_error", "BOOLEAN"),
    ("outcome", "VARCHAR"),
    ("quality_score", "DOUBLE"),
    ("latency_ms", "DOUBLE"),
    ("prompt_template_id", "VARCHAR"),
    ("prompt_prefix_hash", "VARCHAR"),
    ("is_priced", "BOOLEAN"),
    ("list_cost_usd", "DECIMAL(38,9)"),
    ("effective_cost_usd", "DECIMAL(38,9)"),
    ("currency", "VARCHAR"),
    ("gateway_cost_usd", "DECIMAL(38,9)"),
    ("load_date", "DATE"),
    ("source_format", "VARCHAR"),
)

# Invented names, deliberately not the demo organisation's (tokenbook/demo/): code and tests
# must not lean on one company's features.
LEDGER_CAST = (
    # feature, provider, model, template, calls/day, usd per 1k tokens
    ("invoice_triage", "openai", "gpt-4o-mini", "triage_v1", 40, 0.0006),
    ("invoice_triage", "anthropic", "claude-haiku-4-5", "triage_v1", 10, 0.002),
    ("policy_qa", "anthropic", "claude-sonnet-4-5", "policyqa_v2", 15, 0.006),
    ("lead_scoring", "openai", "gpt-4.1", "scoring_v1", 12, 0.004),
)
SEGMENTS = ("enterprise", "mid_market", "smb", "free_tier")


def make_ledger(
    con,
    end: date,
    days: int = 90,
    seed: int = 0,
    spike: dict | None = None,
    schema: str = "marts",
) -> pd.DataFrame:
    """Create ``<schema>.fct_llm_calls`` with synthetic calls (weekly seasonality, mild trend).

    ``spike``: {"day": index, "feature": ..., "model": ..., "segment": ..., "calls": n,
    "tokens": per call} adds a runaway burst of calls from one model and segment on that day.
    Returns the calls frame."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=pd.Timestamp(end), periods=days, freq="D")
    t = np.arange(days)
    weekday = np.where(dates.day_of_week >= 5, 0.6, 1.0)
    parts = []
    for feature, provider, model, template, per_day, usd_per_ktok in LEDGER_CAST:
        n = rng.poisson(per_day * weekday * (1 + 0.004 * t))
        day_idx = np.repeat(t, n)
        k = len(day_idx)
        tokens_in = rng.lognormal(np.log(1500), 0.3, k).astype(int)
        tokens_out = rng.lognormal(np.log(300), 0.3, k).astype(int)
        parts.append(
            pd.DataFrame(
                {
                    "day": day_idx,
                    "feature": feature,
                    "provider": provider,
                    "model": model,
                    "prompt_template_id": template,
                    "customer_segment": rng.choice(SEGMENTS, k, p=[0.4, 0.3, 0.2, 0.1]),
                    "input_tokens": tokens_in,
                    "output_tokens": tokens_out,
                    "usd_per_ktok": usd_per_ktok,
                }
            )
        )
    if spike:
        k = int(spike.get("calls", 300))
        parts.append(
            pd.DataFrame(
                {
                    "day": int(spike["day"]),
                    "feature": spike["feature"],
                    "provider": spike.get("provider", "openai"),
                    "model": spike["model"],
                    "prompt_template_id": spike.get("template", "agent_loop"),
                    "customer_segment": spike.get("segment", "enterprise"),
                    "input_tokens": np.full(k, int(spike.get("tokens", 8000))),
                    "output_tokens": np.full(k, 200),
                    "usd_per_ktok": spike.get("usd_per_ktok", 0.004),
                },
                index=range(k),
            )
        )
    calls = pd.concat(parts, ignore_index=True)
    calls["call_date"] = dates[calls["day"].to_numpy()]
    cost = (calls["input_tokens"] + calls["output_tokens"]) / 1000 * calls["usd_per_ktok"]
    calls["effective_cost_usd"] = cost.round(9)
    calls["list_cost_usd"] = (cost * 1.1).round(9)
    calls["call_id"] = "c" + pd.Series(np.arange(len(calls))).astype(str)
    calls = calls.drop(columns=["day", "usd_per_ktok"])
    con.execute(f"create schema if not exists {schema}")
    cols = ", ".join(f"{c} {t}" for c, t in FCT_LLM_CALLS_COLUMNS)
    con.execute(f"create or replace table {schema}.fct_llm_calls ({cols})")
    con.register("_tb_ledger", calls)
    con.execute(
        f"""insert into {schema}.fct_llm_calls by name
        select call_id, call_id as trace_id, 1 as attempt, cast(call_date as timestamp) as called_at,
               cast(call_date as date) as call_date,
               cast(date_trunc('week', call_date) as date) as call_week,
               cast(date_trunc('month', call_date) as date) as call_month,
               provider, provider as provider_raw, model, model as catalog_model,
               feature, customer_segment, 'team' as team, 'CC-SYN-1' as cost_centre,
               input_tokens, input_tokens as uncached_input_tokens, output_tokens,
               prompt_template_id, true as is_priced, 'success' as status, false as is_error,
               cast(list_cost_usd as decimal(38,9)) as list_cost_usd,
               cast(effective_cost_usd as decimal(38,9)) as effective_cost_usd,
               'USD' as currency, cast(call_date as date) as load_date, 'native' as source_format
        from _tb_ledger"""
    )
    con.unregister("_tb_ledger")
    return calls
