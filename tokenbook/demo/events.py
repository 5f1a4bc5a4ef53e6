"""Planted events: where they land depends only on (seed, days, end).

Placement rules (so the events stay readable):
- every event uses its own feature (five distinct features) and dates at least a week apart
  when the period allows it (relaxed step by step on short periods);
- ``new_feature`` starts 10-25 days before the end (only small features are candidates,
  so the total volume stays stable);
- ``runaway_day`` leaves the last 14 days alone (month-level figures stay stable) and has
  at least 4 weeks of history before it when the period allows it (anomaly scoring needs a fit
  that did not see the day);
- ``prompt_growth`` starts in the first half, so the template reaches its end multiple
  (>= 1.8x) with weeks of growth to see;
- ``launch`` and ``model_switch`` sit in the middle of the period.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from tokenbook.demo.catalog import FEATURES, PROVIDERS

NEW_FEATURE_CANDIDATES = ("meeting_notes", "email_drafter", "contract_extractor")


def _pick_day(
    rng: np.random.Generator, lo: int, hi: int, taken: list[int], gap: int, ok=lambda d: True
) -> int:
    """A day index in [lo, hi] at least ``gap`` days from every taken day (gap relaxed if
    impossible), among days where ``ok(day)`` holds when there are any."""
    lo, hi = max(0, lo), max(max(0, lo), hi)
    for g in range(gap, -1, -1):
        allowed = [d for d in range(lo, hi + 1) if all(abs(d - t) >= g for t in taken)]
        allowed = [d for d in allowed if ok(d)] or allowed
        if allowed:
            return int(allowed[rng.integers(len(allowed))])
    return int(rng.integers(lo, hi + 1))


def plan_events(seed: int, days: int, end: date) -> dict:
    """The planted events as a JSON-ready dict (dates ISO)."""
    if days < 21:
        raise ValueError(f"the demo needs at least 21 days to place its events, got days={days}")
    rng = np.random.default_rng([seed, 101])
    start = end - timedelta(days=days - 1)
    iso = lambda i: (start + timedelta(days=int(i))).isoformat()  # noqa: E731
    names = [f.name for f in FEATURES]

    new_feature = NEW_FEATURE_CANDIDATES[rng.integers(len(NEW_FEATURE_CANDIDATES))]
    others = [n for n in names if n != new_feature]
    order = rng.permutation(len(others))
    launch_f, runaway_f, growth_f, switch_f = (others[i] for i in order[:4])

    last = days - 1
    gap = 7
    taken: list[int] = []
    nf_day = _pick_day(rng, last - 25, last - 10, taken, 0)
    taken.append(nf_day)
    runaway_day = _pick_day(rng, min(28, days // 3), last - 15, taken, gap)
    taken.append(runaway_day)
    growth_day = _pick_day(rng, days // 8, days // 3, taken, gap)
    taken.append(growth_day)
    launch_day = _pick_day(rng, days // 4, (2 * days) // 3, taken, gap)
    taken.append(launch_day)
    switch_day = _pick_day(rng, days // 3, last - 14, taken, gap)
    taken.append(switch_day)
    weekday = lambda d: (start + timedelta(days=d)).weekday() < 5  # noqa: E731
    degraded_day = _pick_day(rng, days // 6, last - 3, taken, gap, weekday)
    degraded_provider = PROVIDERS[rng.integers(len(PROVIDERS))]

    feats = {f.name: f for f in FEATURES}
    runaway_model = feats[runaway_f].standard_models[0][0]
    switch_from = feats[switch_f].standard_models[0][0]
    return {
        "launch": {
            "feature": launch_f,
            "date": iso(launch_day),
            "multiplier": round(float(rng.uniform(2.0, 3.0)), 2),
        },
        "runaway_day": {
            "feature": runaway_f,
            "model": runaway_model,
            "date": iso(runaway_day),
            "target_multiple": round(float(rng.uniform(6.0, 8.0)), 2),
            "input_tokens_multiplier": 3.0,
            "note": "an agent loop of one customer re-sending long contexts all day; the feature's "
            "spend that day is about target_multiple x a typical day",
        },
        "prompt_growth": {
            "feature": growth_f,
            "template": feats[growth_f].templates[0],
            "start_date": iso(growth_day),
            "end_multiple": round(float(rng.uniform(2.2, 2.6)), 2),
            "note": "input tokens of the main template grow linearly from start_date to end; "
            "its prefix hash changes every week",
        },
        "model_switch": {
            "feature": switch_f,
            "date": iso(switch_day),
            "from_model": switch_from,
            "to_model": feats[switch_f].switch_to,
            "eval_before_switch": False,
            "quality_drop": 0.05,
        },
        "new_feature": {"feature": new_feature, "date": iso(nf_day)},
        "degraded_day": {
            "provider": degraded_provider,
            "date": iso(degraded_day),
            "failure_rate": 0.5,
        },
    }
