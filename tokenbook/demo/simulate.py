"""The demo company's traffic as numpy arrays: volume plan, logical requests, call attempts.

Everything is vectorised over requests and attempts (loops only over days, features and
models). Each stage draws from its own seeded stream, so a change in one stage does not
move the others.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from tokenbook.demo.catalog import (
    CUSTOMER_POOL,
    FALLBACK,
    FEATURE_INDEX,
    FEATURES,
    FREE_TIER_EMAIL_SHARE,
    MODEL_INDEX,
    MODELS,
    SEGMENTS,
)

# Mean logical requests per day at scale 1.0 (attempts are ~6% more with retries):
# 120 days x 4,500 = 540k requests, about 575k attempts.
REQUESTS_PER_DAY = 4500.0
GROWTH_OVER_PERIOD = 1.35  # volume at the end relative to the start (before events)
MAX_ATTEMPTS = 4
BASE_FAILURE = 0.035
STATUS_FAIL = np.array(["rate_limited", "timeout", "error"])
ENVIRONMENTS = np.array(["prod", "staging", "dev"])
SERVICE_TIERS = np.array(["default", "batch", "priority", "flex"])
MS_PER_DAY = 86_400_000


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


@dataclass(frozen=True)
class VolumePlan:
    start: date
    days: int
    weekday: np.ndarray  # (days,)
    requests: np.ndarray  # (days, features) logical requests, runaway extras excluded
    runaway_extra: int  # extra requests on the runaway day


def plan_volume(seed: int, days: int, end: date, scale: float, events: dict) -> VolumePlan:
    """Logical requests per day and feature. Cheap: used to check volume without writing."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    start = end - timedelta(days=days - 1)
    t = np.arange(days)
    weekday = np.array([(start + timedelta(days=int(i))).weekday() for i in t])
    share = np.array([f.share for f in FEATURES])
    weekend = np.array([f.weekend for f in FEATURES])
    growth = GROWTH_OVER_PERIOD ** (t / max(days - 1, 1))
    lam = share[None, :] * growth[:, None]
    lam = lam * np.where(weekday[:, None] >= 5, weekend[None, :], 1.0)
    day_of = {k: (date.fromisoformat(v.get("date") or v.get("start_date")) - start).days
              for k, v in events.items()}

    li = FEATURE_INDEX[events["launch"]["feature"]]
    ramp = np.clip((t - day_of["launch"] + 1) / 3.0, 0.0, 1.0)  # three-day ramp to the new level
    lam[:, li] *= 1.0 + (events["launch"]["multiplier"] - 1.0) * ramp

    ni = FEATURE_INDEX[events["new_feature"]["feature"]]
    adoption = np.clip((t - day_of["new_feature"] + 1) / 7.0, 0.0, 1.0)
    lam[:, ni] *= np.where(t >= day_of["new_feature"], np.maximum(adoption, 0.15), 0.0)

    noise = _rng(seed, 1).lognormal(0.0, 0.06, size=lam.shape)
    lam = lam * noise
    lam *= REQUESTS_PER_DAY * scale * days / lam.sum()
    requests = _rng(seed, 2).poisson(lam)
    requests[:, ni] = np.where(t >= day_of["new_feature"], requests[:, ni], 0)

    ri = FEATURE_INDEX[events["runaway_day"]["feature"]]
    active = requests[:, ri][requests[:, ri] > 0]
    typical = float(np.median(active)) if len(active) else 0.0
    extra = int(round(runaway_extra_share(events) * typical))
    return VolumePlan(start, days, weekday, requests, extra)


def expected_request_cost(
    feature_index: int, model_index: int, complex_: bool = False, input_multiplier: float = 1.0
) -> float:
    """Rough list cost of one request (USD) from the catalogue's token shapes and prices."""
    f, m = FEATURES[feature_index], MODELS[model_index]
    inp = f.input_median * np.exp(f.input_sigma**2 / 2) * (1.5 if complex_ else 1.0)
    out = f.output_median * np.exp(0.18) * (1.8 if complex_ else 1.0) * (2.75 if m.reasoning else 1)
    return (inp * input_multiplier * m.input_per_mtok + out * m.output_per_mtok) / 1e6


def runaway_extra_share(events: dict) -> float:
    """Extra requests on the runaway day, as a multiple of the feature's typical day, so that
    the feature's spend that day reaches ``events['runaway_day']['target_multiple']``."""
    ev = events["runaway_day"]
    fi, mi = FEATURE_INDEX[ev["feature"]], MODEL_INDEX[ev["model"]]
    f = FEATURES[fi]
    per_request = (1 - f.complex_share) * sum(
        w * expected_request_cost(fi, MODEL_INDEX[k]) for k, w in f.standard_models
    ) + f.complex_share * expected_request_cost(fi, MODEL_INDEX[f.complex_model], True)
    extra_cost = expected_request_cost(fi, mi, input_multiplier=ev["input_tokens_multiplier"])
    return float(np.clip((ev["target_multiple"] - 1) * per_request / extra_cost, 0.5, 25.0))


def _choose(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Row-wise categorical choice: probs is (n, k) or (k,), u is (n,)."""
    cum = np.cumsum(probs, axis=-1)
    cum = cum / cum[..., -1:]
    if cum.ndim == 1:
        return np.searchsorted(cum, u, side="right").clip(0, len(cum) - 1)
    return (u[:, None] >= cum).sum(axis=1).clip(0, cum.shape[1] - 1)


@functools.lru_cache(maxsize=8)
def customer_pool(seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, segment offsets, is_email) for every customer of every segment."""
    rng = _rng(seed, 3)
    letters = np.array(list("abcdefghjkmnpqrstuvwxyz"))
    ids: list[str] = []
    is_email: list[bool] = []
    offsets = [0]
    firsts = ["alex", "sam", "jordan", "taylor", "casey", "morgan", "riley", "jamie"]
    for seg in SEGMENTS:
        n = CUSTOMER_POOL[seg]
        for i in range(n):
            if seg == "free_tier" and rng.random() < FREE_TIER_EMAIL_SHARE:
                ids.append(f"{firsts[i % len(firsts)]}.{''.join(rng.choice(letters, 5))}@gmail.com")
                is_email.append(True)
            else:
                body = "".join(
                    str(rng.integers(2, 10)) if k % 3 == 2 else str(rng.choice(letters))
                    for k in range(12)
                )
                ids.append(f"cus_{body}")
                is_email.append(False)
        offsets.append(len(ids))
    return ids, np.array(offsets), np.array(is_email)


@dataclass
class Traffic:
    """One entry per call attempt (arrays of equal length) plus per-request arrays."""

    att: dict[str, np.ndarray]
    n_requests: int


def simulate(seed: int, plan: VolumePlan, events: dict) -> Traffic:
    start, days = plan.start, plan.days
    nf = len(FEATURES)
    day_of = {k: (date.fromisoformat(v.get("date") or v.get("start_date")) - start).days
              for k, v in events.items()}

    # ---- logical requests -------------------------------------------------------------
    counts = plan.requests.reshape(-1)
    day = np.repeat(np.repeat(np.arange(days), nf), counts)
    feat = np.repeat(np.tile(np.arange(nf), days), counts)
    runaway_f = FEATURE_INDEX[events["runaway_day"]["feature"]]
    n_extra = plan.runaway_extra
    day = np.concatenate([day, np.full(n_extra, day_of["runaway_day"])])
    feat = np.concatenate([feat, np.full(n_extra, runaway_f)])
    runaway = np.zeros(len(day), bool)
    runaway[len(day) - n_extra:] = True
    n = len(day)
    rng = _rng(seed, 10)

    # time of day: business-hours bump (UTC) plus a flat floor; agent loop runs 09:00-23:00
    sec = np.where(rng.random(n) < 0.72, rng.normal(15.0, 3.2, n) * 3600, rng.uniform(0, 86400, n))
    sec = np.where(runaway, rng.uniform(9 * 3600, 23 * 3600, n), sec)
    start_ms = (np.clip(sec, 0, 86_100) * 1000).astype(np.int64) + rng.integers(0, 1000, n)

    # segment and customer
    seg_mix = np.array([f.segment_mix for f in FEATURES])
    seg = _choose(rng.random(n), seg_mix[feat])
    ids, offsets, _ = customer_pool(seed)
    pool = np.array([CUSTOMER_POOL[s] for s in SEGMENTS])
    idx = np.floor(pool[seg] * rng.random(n) ** 2.2).astype(np.int64)
    customer = offsets[seg] + idx
    runaway_customer = offsets[0] + 3  # one enterprise customer's agent loop
    seg = np.where(runaway, 0, seg)
    customer = np.where(runaway, runaway_customer, customer)

    # request class and model
    complex_share = np.array([f.complex_share for f in FEATURES])
    is_complex = (rng.random(n) < complex_share[feat]) & ~runaway
    nm = len(MODELS)
    mix_before = np.zeros((nf, nm))
    mix_after = np.zeros((nf, nm))
    for fi, f in enumerate(FEATURES):
        for key, w in f.standard_models:
            mix_before[fi, MODEL_INDEX[key]] = w
    mix_after[:] = mix_before
    sw = events["model_switch"]
    swf = FEATURE_INDEX[sw["feature"]]
    row = mix_before[swf] * (0.15 / mix_before[swf].sum())
    row[MODEL_INDEX[sw["to_model"]]] += 0.85
    mix_after[swf] = row
    switched = (feat == swf) & (day >= day_of["model_switch"])
    probs = np.where(switched[:, None], mix_after[feat], mix_before[feat])
    model = _choose(rng.random(n), probs)
    complex_model = np.array([MODEL_INDEX[f.complex_model] for f in FEATURES])
    model = np.where(is_complex, complex_model[feat], model)
    model = np.where(runaway, MODEL_INDEX[events["runaway_day"]["model"]], model)

    env = _choose(rng.random(n), np.array([0.93, 0.06, 0.01]))
    n_tmpl = np.array([len(f.templates) for f in FEATURES])
    tmpl = np.where((rng.random(n) < 0.15) & (n_tmpl[feat] > 1), 1, 0)
    tmpl = np.where(runaway, 0, tmpl)

    # ---- tokens -----------------------------------------------------------------------
    in_med = np.array([f.input_median for f in FEATURES])
    in_sig = np.array([f.input_sigma for f in FEATURES])
    out_med = np.array([f.output_median for f in FEATURES])
    prefix = np.array([f.prefix_tokens for f in FEATURES], dtype=float)
    growth = np.ones(n)
    pg = events["prompt_growth"]
    gf, g0 = FEATURE_INDEX[pg["feature"]], day_of["prompt_growth"]
    span = max(days - 1 - g0, 1)
    grows = (feat == gf) & (tmpl == 0) & (day >= g0)
    growth = np.where(grows, 1.0 + (pg["end_multiple"] - 1.0) * (day - g0) / span, 1.0)
    # template version: v3 until growth starts, then one version per week
    version = np.where(grows, 4 + (day - g0) // 7, 3)

    inp = rng.lognormal(np.log(in_med[feat]), in_sig[feat])
    inp = np.where(is_complex, inp * 1.5, inp)
    inp = np.where(runaway, inp * events["runaway_day"]["input_tokens_multiplier"], inp)
    pre = prefix[feat] * growth
    inp = np.maximum(inp * growth, pre + 40)
    # a few long-context contract calls cross the 200k context tier
    tier = is_complex & (feat == FEATURE_INDEX["contract_extractor"]) & (rng.random(n) < 0.04)
    inp = np.where(tier, rng.uniform(205_000, 380_000, n), inp)
    inp = np.rint(inp).astype(np.int64)

    visible = np.rint(rng.lognormal(np.log(out_med[feat]), 0.6)
                      * np.where(is_complex, 1.8, 1.0)).astype(np.int64) + 5
    reasoning_model = np.array([m.reasoning for m in MODELS])
    thinks = reasoning_model[model] & (rng.random(n) < np.where(
        np.array([m.key == "gemini-2.5-flash" for m in MODELS])[model], 0.5, 1.0))
    reasoning = np.where(thinks, np.rint(visible * rng.uniform(0.5, 3.0, n)), 0).astype(np.int64)

    # ---- prompt caching ---------------------------------------------------------------
    dynamic = rng.random(n) < 0.10  # no stable prefix: the prompt starts with user text
    style = np.array([m.cache_style for m in MODELS])[model]
    ttl_feature = np.array([f.cache_ttl or "" for f in FEATURES])[feat]
    u = rng.random(n)
    pre_i = np.rint(pre).astype(np.int64)
    explicit = (style == "explicit") & (ttl_feature != "") & ~dynamic
    cache_write = np.where(explicit & (u < 0.08), pre_i, 0)
    cache_read = np.where(explicit & (u >= 0.08) & (u < 0.83), pre_i, 0)
    is_vertex = np.array([m.provider == "vertex_ai" for m in MODELS])[model]
    auto_hit = (style == "auto") & ~dynamic & (pre_i >= 1024) & (u < np.where(is_vertex, 0.4, 0.55))
    cache_read = np.where(auto_hit, (pre_i // 128) * 128, cache_read)
    ttl = np.where(cache_write > 0, np.where(rng.random(n) < 0.1, "1h", ttl_feature), "")
    ttl = np.where((cache_write > 0) & (ttl == ""), "5m", ttl)
    inp = np.maximum(inp, cache_read + cache_write + 20)

    # ---- batch and service tier -------------------------------------------------------
    batch_share = np.array([f.batch_share for f in FEATURES])
    priceable = np.array([m.cache_style != "none" for m in MODELS])[model]
    batch = (rng.random(n) < batch_share[feat]) & priceable & ~runaway
    provider_of = np.array([m.provider for m in MODELS])[model]
    openai_like = (provider_of == "openai") | (provider_of == "azure_openai")
    tier_code = np.zeros(n, np.int64)
    tier_code = np.where(batch, 1, tier_code)
    prio = ~batch & openai_like & (seg == 0) & np.isin(feat, [0, 2]) & (rng.random(n) < 0.25)
    tier_code = np.where(prio, 2, tier_code)
    flex = ~batch & (provider_of == "openai") & np.isin(feat, [1, 2]) & (rng.random(n) < 0.15)
    tier_code = np.where(flex & ~prio, 3, tier_code)

    # ---- retries: attempts per request ------------------------------------------------
    rng2 = _rng(seed, 11)
    dg = events["degraded_day"]
    degraded = (provider_of == dg["provider"]) & (day == day_of["degraded_day"])
    p_fail = np.where(degraded, dg["failure_rate"], BASE_FAILURE)
    p_fail = np.where(runaway, 0.01, p_fail)
    n_fail = rng2.geometric(1.0 - p_fail) - 1
    # After two failures on a degraded provider, most gateways fall back to another provider
    # (same trace_id, attempt 3+ on the fallback model), which then fails at the base rate.
    fallback = degraded & (n_fail >= 2) & (rng2.random(n) < 0.8)
    n_fail = np.where(fallback, 2 + rng2.geometric(1.0 - BASE_FAILURE, n) - 1, n_fail)
    attempts = np.minimum(n_fail + 1, MAX_ATTEMPTS)
    final_ok = n_fail < MAX_ATTEMPTS

    # outcome of the logical request (on its final attempt)
    success = np.array([f.success for f in FEATURES])[feat]
    big = np.isin(model, [MODEL_INDEX[k] for k in ("claude-sonnet-4-5", "bedrock-claude-sonnet-4-5",
                                                   "gpt-4.1", "gemini-2.5-pro", "azure-gpt-4o")])
    success = success + np.where(big, 0.06, 0.0) - np.where(switched, sw["quality_drop"], 0.0)
    succeeded = final_ok & (rng2.random(n) < success)
    quality = np.clip(rng2.normal(np.where(succeeded, 0.86, 0.48), 0.08), 0.0, 1.0)
    quality = quality - np.where(switched, sw["quality_drop"], 0.0)

    req = dict(day=day, feat=feat, seg=seg, customer=customer, model=model, env=env,
               tmpl=tmpl, version=version, is_complex=is_complex, dynamic=dynamic, inp=inp,
               visible=visible, reasoning=reasoning, cache_read=cache_read,
               cache_write=cache_write, ttl=ttl, batch=batch, tier_code=tier_code,
               runaway=runaway, start_ms=start_ms, attempts=attempts, final_ok=final_ok,
               succeeded=succeeded, quality=np.clip(quality, 0.0, 1.0), degraded=degraded)

    # ---- expand to attempts -----------------------------------------------------------
    r = np.repeat(np.arange(n), attempts)
    first = np.cumsum(attempts) - attempts
    k = np.arange(len(r)) - np.repeat(first, attempts) + 1
    last = k == attempts[r]
    ok = last & final_ok[r]
    na = len(r)
    rng3 = _rng(seed, 12)
    fail_probs = np.where(degraded[r][:, None], np.array([0.35, 0.55, 0.10]),
                          np.array([0.45, 0.25, 0.30]))
    fail_kind = _choose(rng3.random(na), fail_probs)  # 0 rate_limited, 1 timeout, 2 error
    status = np.where(ok, "ok", STATUS_FAIL[fail_kind])
    keeps_input = ~ok & (((fail_kind == 1) & (rng3.random(na) < 0.5))
                         | ((fail_kind == 2) & (rng3.random(na) < 0.3)))
    a_inp = np.where(ok | keeps_input, inp[r], 0)
    on_fallback = fallback[r] & (k >= 3)
    fallback_of = np.array([MODEL_INDEX[FALLBACK[m.key]] for m in MODELS])
    a_model = np.where(on_fallback, fallback_of[model[r]], model[r])
    a_cr = np.where(ok & ~on_fallback, cache_read[r], 0)  # the fallback has no warm cache
    a_cw = np.where(ok & ~on_fallback, cache_write[r], 0)
    a_reason = np.where(ok & reasoning_model[a_model], reasoning[r], 0)
    a_out = np.where(ok, visible[r] + a_reason, 0)

    speed = np.array([m.speed_ms_per_token for m in MODELS])[a_model]
    latency = (rng3.uniform(250, 900, na) + a_out * speed * rng3.lognormal(0, 0.25, na))
    latency = np.where(batch[r] & ok, rng3.uniform(60_000, 3_600_000, na), latency)
    latency = np.where(status == "rate_limited", rng3.uniform(40, 250, na), latency)
    latency = np.where(status == "timeout", np.where(rng3.random(na) < 0.5, 30_000.0, 60_000.0)
                       + rng3.uniform(0, 80, na), latency)
    latency = np.where(status == "error", rng3.uniform(150, 3000, na), latency)
    # attempt k starts after the previous attempts' latency plus an exponential backoff
    step = np.where(batch[r], 0.0, np.minimum(latency, 60_080.0)) + 1000.0 * 2.0 ** k
    cum = np.cumsum(step)
    offset = cum - step - np.repeat(cum[first] - step[first], attempts)
    ts_ms = (day[r].astype(np.int64) * MS_PER_DAY + start_ms[r] + offset.astype(np.int64))
    ts_ms = np.minimum(ts_ms, day[r].astype(np.int64) * MS_PER_DAY + MS_PER_DAY - 1)

    att = dict(req=r, attempt=k, last=last, status=status, input=a_inp, cache_read=a_cr,
               cache_write=a_cw, reasoning=a_reason, output=a_out, latency=latency, ts_ms=ts_ms,
               outcome=np.where(last, np.where(succeeded[r], "success", "failure"), ""),
               quality=np.where(last & ok, req["quality"][r], np.nan))
    att["model"] = a_model
    att["fallback"] = on_fallback
    for key in ("day", "feat", "seg", "customer", "env", "tmpl", "version", "is_complex",
                "dynamic", "ttl", "batch", "tier_code", "runaway", "attempts", "degraded"):
        att[key] = req[key][r]
    return Traffic(att=att, n_requests=n)
