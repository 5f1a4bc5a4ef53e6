"""``generate``: the demo organisation's gateway logs and their manifest.

Pipeline: plan the events (events.py) -> plan volume per day and feature -> simulate
requests and attempts (simulate.py) -> decorate them the way a real gateway writes them
(name variants, missing tags, ids, free text with planted PII) -> plant dirty data (bad lines,
late records, duplicates) -> render and write one gzip JSONL file per day (render.py) ->
manifest.json with every count a test needs.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from tokenbook.demo import events as events_mod
from tokenbook.demo import simulate as sim
from tokenbook.demo.catalog import (
    FEATURES,
    MODELS,
    PROVIDERS,
    SEGMENTS,
    TEAM_COST_CENTRE,
    UNPRICEABLE_MODEL,
    teams_manifest,
)
from tokenbook.demo.evals import build_evals, evals_csv
from tokenbook.demo.orgconfig import write_demo_config
from tokenbook.demo.pii import PHRASES, PII_KINDS, build_pools
from tokenbook.demo.render import hex_ids, render_files

MANIFEST_VERSION = 1
POOL_SIZE = 24
PREVIEW_SHARE = 0.35
META_SHARE = 0.70
CLIENT_SHARE = 0.04
UNTAGGED_FEATURE = 0.012
UNTAGGED_SEGMENT = 0.010
MISSING_TEAM = 0.004
BAD_KINDS = ("not_json", "not_object", "missing_required", "wrong_type", "negative_tokens",
             "cache_above_input", "bad_timestamp")
APPS = ("web", "ios", "android", "api")
SDKS = ("openai-python/1.54.0", "anthropic-sdk-python/0.39.0", "node-fetch/3.3.2")
REGIONS = {
    "vertex_ai": ("us-central1", "europe-west4"),
    "bedrock": ("us-east-1", "us-west-2"),
    "azure_openai": ("eastus", "swedencentral"),
}
PROVIDER_SHORT = {"openai": "oai", "anthropic": "ant", "vertex_ai": "gcp", "bedrock": "aws",
                  "azure_openai": "az", "self_hosted": "gpu"}


def _dict_col(codes: np.ndarray, values: list[str], valid: np.ndarray | None = None) -> pa.Array:
    """A string column as codes into ``values``; rows where ``valid`` is False are null."""
    mask = None if valid is None else ~np.asarray(valid, bool)
    idx = pa.array(np.asarray(codes, np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(idx, pa.array(values, pa.string()))


def _str_col(values: np.ndarray) -> pa.Array:
    uniq, inv = np.unique(values.astype(str), return_inverse=True)
    return _dict_col(inv, [str(x) for x in uniq])


def _pick(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(pool))
    return np.sort(rng.choice(pool, size=k, replace=False)) if k else np.array([], np.int64)


def plan(days: int = 120, end: date | None = None, seed: int = 7, scale: float = 1.0) -> dict:
    """Events and logical-request counts without generating calls (cheap)."""
    if end is None:
        raise ValueError("end is required: the last day of the demo period (a date)")
    events = events_mod.plan_events(seed, days, end)
    volume = sim.plan_volume(seed, days, end, scale, events)
    return {
        "events": _enrich_events(events, volume.runaway_extra),
        "start": volume.start.isoformat(),
        "end": end.isoformat(),
        "requests": int(volume.requests.sum()) + volume.runaway_extra,
        "requests_per_day": (volume.requests.sum(axis=1)).tolist(),
    }


def generate(
    out_dir: str | Path,
    days: int = 120,
    end: date | None = None,
    seed: int = 7,
    scale: float = 1.0,
) -> dict:
    """Write the demo organisation's gateway logs under ``out_dir/gateway/`` and
    ``out_dir/manifest.json``; return the manifest. Same arguments, same bytes."""
    if end is None:
        raise ValueError("end is required: the last day of the demo period (a date)")
    if isinstance(end, str):
        end = date.fromisoformat(end)
    out = Path(out_dir)
    events = events_mod.plan_events(seed, days, end)
    volume = sim.plan_volume(seed, days, end, scale, events)
    traffic = sim.simulate(seed, volume, events)
    a = traffic.att
    na = len(a["req"])
    start = volume.start
    last = days - 1
    rng = np.random.default_rng([seed, 20])

    # ---- names as gateways write them -------------------------------------------------
    variants: list[tuple[str, str, int]] = []
    var_probs = []
    for mi, m in enumerate(MODELS):
        row = []
        for prov, name, w in m.logged_as:
            variants.append((prov, name, mi))
            row.append((len(variants) - 1, w))
        var_probs.append(row)
    u_req = np.random.default_rng([seed, 21]).random(traffic.n_requests)[a["req"]]
    variant = np.zeros(na, np.int64)
    for mi, row in enumerate(var_probs):
        sel = a["model"] == mi
        ids = np.array([v for v, _ in row])
        w = np.array([p for _, p in row])
        variant[sel] = ids[sim._choose(u_req[sel], w)]
    prov_raw = [v[0] for v in variants]
    model_raw = [v[1] for v in variants]

    # ---- tags -------------------------------------------------------------------------
    r = rng.random(na)
    feature_mode = np.where(r < UNTAGGED_FEATURE, np.where(rng.random(na) < 0.45, 1, 2), 0)
    r = rng.random(na)
    segment_mode = np.where(r < UNTAGGED_SEGMENT, np.where(rng.random(na) < 0.45, 1, 2), 0)
    team_idx = np.array([list(TEAM_COST_CENTRE).index(f.team) for f in FEATURES])[a["feat"]]
    team_ok = rng.random(na) >= MISSING_TEAM
    ids, offsets, is_email = sim.customer_pool(seed)
    customer_ok = rng.random(na) >= 0.005
    email_customer = is_email[a["customer"]] & customer_ok

    provider_canon = np.array([m.provider for m in MODELS])[a["model"]]
    teams = list(TEAM_COST_CENTRE)
    envs = list(sim.ENVIRONMENTS)
    provs = list(PROVIDERS) + ["self_hosted"]
    prov_idx = np.array([provs.index(m.provider) for m in MODELS])[a["model"]]
    key_code = (team_idx * len(envs) + a["env"]) * len(provs) + prov_idx
    key_values = [f"key-{t}-{e}-{PROVIDER_SHORT[p]}" for t in teams for e in envs for p in provs]
    project_values = [f"proj-{t}" for t in teams]

    tmpl_values = [t for f in FEATURES for t in (f.templates + f.templates[:1])[:2]]
    tmpl_code = a["feat"] * 2 + a["tmpl"]
    tmpl_ok = rng.random(na) >= 0.03
    prefix_key = np.where(a["dynamic"], -1, (a["feat"] * 10 + a["tmpl"]) * 1000 + a["version"])

    # ---- gateway cost estimate (list prices, ignores 1h-write and tier premiums) ----
    pin = np.array([m.input_per_mtok for m in MODELS])[a["model"]]
    pout = np.array([m.output_per_mtok for m in MODELS])[a["model"]]
    pcr = np.array([m.cache_read_per_mtok for m in MODELS])[a["model"]]
    wmul = np.where(np.array([m.cache_style == "explicit" for m in MODELS])[a["model"]], 1.25, 1.0)
    uncached = a["input"] - a["cache_read"] - a["cache_write"]
    cost = (uncached * pin + a["cache_read"] * pcr + a["cache_write"] * pin * wmul
            + a["output"] * pout) / 1e6
    cost = np.where(a["batch"], cost * 0.5, cost)
    has_cost = rng.random(na) >= 0.04
    priceable = np.array([m.key != UNPRICEABLE_MODEL for m in MODELS])[a["model"]]

    tier_values = list(sim.SERVICE_TIERS)
    tier_present = (a["tier_code"] != 0) | (rng.random(na) >= 0.2)

    version_new = a["day"] >= int(days * 0.4)
    ts_style = ((~version_new) & (a["env"] == 1)).astype(np.int8)

    region_values = [r for p in PROVIDERS for r in REGIONS.get(p, ())]
    region_code = np.full(na, -1)
    for p, regs in REGIONS.items():
        sel = provider_canon == p
        region_code[sel] = region_values.index(regs[0]) + (rng.random(sel.sum()) < 0.3)
    region_ok = (region_code >= 0) & (rng.random(na) < 0.5)

    # ---- dirty data: late records and duplicates (never on rows carrying PII) ------------
    drng = np.random.default_rng([seed, 30])
    eligible = ~email_customer & ~a["runaway"]
    taken = np.zeros(na, bool)

    def choose(cond: np.ndarray, k: int) -> np.ndarray:
        rows = _pick(drng, np.flatnonzero(cond & eligible & ~taken), k)
        taken[rows] = True
        return rows

    n_late1 = max(3, round(0.002 * na))
    n_late3 = max(2, round(0.0005 * na))
    n_dup = max(2, round(0.0004 * na))
    late1 = choose(a["day"] <= last - 1, n_late1)
    late3 = choose(a["day"] <= last - 3, n_late3)
    oow = choose(a["day"] <= last - 12, 3)
    dup_same = choose(np.ones(na, bool), n_dup)
    dup_next = choose(a["day"] <= last - 1, n_dup)

    # ---- free text and PII (only on rows not touched by dirty data) ---------------------
    prng = np.random.default_rng([seed, 40])
    pools = build_pools(np.random.default_rng([seed, 41]), POOL_SIZE)
    pii_values = [(k, v) for k in PII_KINDS for v in pools[k]]
    phrase_rows = [(k, t) for k in PII_KINDS for t in PHRASES[k]]
    phrase_first = {k: [i for i, (kk, _) in enumerate(phrase_rows) if kk == k][0]
                    for k in PII_KINDS}
    benign_rows = [t for f in FEATURES for t in f.previews]
    benign_first = np.cumsum([0] + [len(f.previews) for f in FEATURES])[:-1]
    benign_n = np.array([len(f.previews) for f in FEATURES])
    clean = ~taken & ~email_customer

    def plant(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """kind index, pii value id and phrase id for each row, every kind evenly."""
        kinds = prng.permutation(np.arange(len(rows)) % len(PII_KINDS))
        value = kinds * POOL_SIZE + prng.integers(0, POOL_SIZE, len(rows))
        first = np.array([phrase_first[k] for k in PII_KINDS])[kinds]
        n_ph = np.array([len(PHRASES[k]) for k in PII_KINDS])[kinds]
        phrase = first + prng.integers(0, 1 << 30, len(rows)) % n_ph
        return kinds, value, phrase

    n_kinds = len(PII_KINDS)
    has_preview = prng.random(na) < PREVIEW_SHARE
    preview_id = np.where(has_preview, benign_first[a["feat"]]
                          + prng.integers(0, 1 << 30, na) % benign_n[a["feat"]], -1)
    preview_pii = np.full(na, -1)
    preview_phrase = np.full(na, -1)
    rows = _pick(prng, np.flatnonzero(has_preview & clean),
                 max(2 * n_kinds, round(0.02 * has_preview.sum())))
    k_prev, preview_pii[rows], preview_phrase[rows] = plant(rows)

    has_meta = prng.random(na) < META_SHARE
    meta_pii = np.full(na, -1)
    meta_phrase = np.full(na, -1)
    rows = _pick(prng, np.flatnonzero(has_meta & clean),
                 max(2 * n_kinds, round(0.01 * has_meta.sum())))
    k_meta, meta_pii[rows], meta_phrase[rows] = plant(rows)

    debug_pii = np.full(na, -1)
    debug_phrase = np.full(na, -1)
    rows = _pick(prng, np.flatnonzero(clean), max(2 * n_kinds, round(0.002 * na)))
    k_debug, debug_pii[rows], debug_phrase[rows] = plant(rows)

    client_ip = np.full(na, -1)
    ip_kind = PII_KINDS.index("ip")
    client_rows = _pick(prng, np.flatnonzero(clean), max(n_kinds, round(CLIENT_SHARE * na)))
    client_ip[client_rows] = ip_kind * POOL_SIZE + prng.integers(0, POOL_SIZE, len(client_rows))

    def by_kind(kinds: np.ndarray) -> dict[str, int]:
        c = np.bincount(kinds, minlength=n_kinds)
        return {k: int(c[i]) for i, k in enumerate(PII_KINDS)}

    pii_by_field = {
        "customer_id": {**{k: 0 for k in PII_KINDS}, "email": int(email_customer.sum())},
        "prompt_preview": by_kind(k_prev),
        "metadata": by_kind(k_meta),
        "extra": {k: v + (len(client_rows) if k == "ip" else 0) for k, v in by_kind(k_debug).items()},
    }
    pii_paths = {
        "customer_id": int(email_customer.sum()),
        "prompt_preview": int(len(k_prev)),
        "metadata.user.email": int((k_meta == PII_KINDS.index("email")).sum()),
        "metadata.notes": int((k_meta != PII_KINDS.index("email")).sum()),
        "client.ip": int(len(client_rows)),
        "debug_context": int(len(k_debug)),
    }

    # ---- the attempts table -------------------------------------------------------------
    seg_names = list(SEGMENTS)
    table = pa.table({
        "gid": pa.array(np.arange(na, dtype=np.int64)),
        "rid": pa.array(a["req"].astype(np.int64)),
        "attempt": pa.array(a["attempt"].astype(np.int32)),
        "has_trace": pa.array(~((a["attempts"] == 1) & (rng.random(na) < 0.02))),
        "ts_ms": pa.array(np.datetime64(start, "ms").astype(np.int64) + a["ts_ms"]),
        "ts_style": pa.array(ts_style),
        "provider": _dict_col(variant, prov_raw),
        "model": _dict_col(variant, model_raw),
        "feature_mode": pa.array(feature_mode.astype(np.int8)),
        "feature": _dict_col(a["feat"], [f.name for f in FEATURES]),
        "segment_mode": pa.array(segment_mode.astype(np.int8)),
        "segment": _dict_col(a["seg"], seg_names),
        "segment_label": _dict_col(a["seg"], seg_names),
        "team": _dict_col(team_idx, teams, team_ok),
        "customer_id": _dict_col(a["customer"], ids, customer_ok),
        "environment": _dict_col(a["env"], envs),
        "request_class": _dict_col(a["is_complex"].astype(int), ["standard", "complex"]),
        "api_key_id": _dict_col(key_code, key_values),
        "project_id": _dict_col(team_idx, project_values),
        "template": _dict_col(tmpl_code, tmpl_values, tmpl_ok),
        "prefix_key": pa.array(prefix_key.astype(np.int64)),
        "input_tokens": pa.array(a["input"].astype(np.int64)),
        "output_tokens": pa.array(a["output"].astype(np.int64)),
        "has_cache_fields": pa.array(priceable),
        "cache_read": pa.array(a["cache_read"].astype(np.int64)),
        "cache_write": pa.array(a["cache_write"].astype(np.int64)),
        "ttl": _str_col(np.where(a["cache_write"] > 0, a["ttl"], "")),
        "reasoning": pa.array(a["reasoning"].astype(np.int64)),
        "batch": pa.array(a["batch"].astype(bool)),
        "service_tier": _dict_col(np.where(tier_present, a["tier_code"], 4),
                                  tier_values + [""]),
        "status": _str_col(a["status"]),
        "outcome": _str_col(a["outcome"]),
        "quality": pa.array(a["quality"].astype(np.float64)),
        "latency": pa.array(a["latency"].astype(np.float64)),
        "has_cost": pa.array(has_cost),
        "cost_usd": pa.array(np.where(priceable, cost, 0.0)),
        "preview_id": pa.array(preview_id.astype(np.int64)),
        "preview_phrase": pa.array(preview_phrase.astype(np.int64)),
        "preview_pii": pa.array(preview_pii.astype(np.int64)),
        "has_meta": pa.array(has_meta),
        "app": _dict_col(prng.integers(0, len(APPS), na), list(APPS)),
        "meta_phrase": pa.array(meta_phrase.astype(np.int64)),
        "meta_pii": pa.array(meta_pii.astype(np.int64)),
        "gateway_version": _dict_col(version_new.astype(int), ["2.13.4", "2.14.1"]),
        "region": _dict_col(np.maximum(region_code, 0), region_values, region_ok),
        "client_ip_id": pa.array(client_ip.astype(np.int64)),
        "sdk": _dict_col(prng.integers(0, len(SDKS), na), list(SDKS)),
        "debug_phrase": pa.array(debug_phrase.astype(np.int64)),
        "debug_pii": pa.array(debug_pii.astype(np.int64)),
    })
    # ids: uuid-like request ids, 32-hex trace ids, 16-hex prompt-prefix hashes (one per
    # stable prefix, one per request without a stable prefix), letter-only session ids
    irng = np.random.default_rng([seed, 50])
    req_idx = pa.array(a["req"])
    keys, key_code = np.unique(prefix_key, return_inverse=True)  # -1 (dynamic) sorts first
    stable = hex_ids(irng, len(keys), (16,))
    dynamic = hex_ids(irng, traffic.n_requests, (16,))
    hash_idx = np.where(prefix_key >= 0, key_code, len(keys) + a["req"])
    sessions = hex_ids(irng, traffic.n_requests // 3 + 1, (14,), letters_only=True)
    table = (
        table.append_column("request_id", hex_ids(irng, na, (8, 4, 4, 4, 12)))
        .append_column("trace_id", hex_ids(irng, traffic.n_requests, (32,)).take(req_idx))
        .append_column("prefix_hash", pa.DictionaryArray.from_arrays(
            pa.array(hash_idx.astype(np.int32)), pa.concat_arrays([stable, dynamic])))
        .append_column("session_id", sessions.take(pa.array(a["req"] // 3)))
    )
    # ---- where each line goes -----------------------------------------------------------
    ms = sim.MS_PER_DAY
    file_day = a["day"].copy()
    sort_ms = a["ts_ms"].copy()
    lag1 = np.ones(len(late1), np.int64)
    lag3 = np.full(len(late3), 3)
    lag_oow = np.array([9, 10, 12][: len(oow)])
    for rows_, lag in ((late1, lag1), (late3, lag3), (oow, lag_oow)):
        file_day[rows_] = a["day"][rows_] + lag
        sort_ms[rows_] = file_day[rows_] * ms + drng.integers(0, ms, len(rows_))
    dup_same_sort = np.minimum(a["ts_ms"][dup_same] + drng.integers(1000, 3_600_000, len(dup_same)),
                               (a["day"][dup_same] + 1) * ms - 1)
    dup_next_sort = (a["day"][dup_next] + 1) * ms + drng.integers(0, 1_800_000, len(dup_next))
    entries = pa.table({
        "gid": pa.array(np.concatenate([np.arange(na), dup_same, dup_next]).astype(np.int64)),
        "file_day": pa.array(np.concatenate([file_day, a["day"][dup_same],
                                             a["day"][dup_next] + 1]).astype(np.int64)),
        "sort_ms": pa.array(np.concatenate([sort_ms, dup_same_sort, dup_next_sort])
                            .astype(np.int64)),
        "seq": pa.array(np.arange(na + len(dup_same) + len(dup_next), dtype=np.int64)),
    })

    bad_lines, bad_counts, bad_file_day = _bad_lines(seed, days, start, drng)
    bad = pa.table({
        "file_day": pa.array(bad_file_day.astype(np.int64)),
        "sort_ms": pa.array(bad_file_day * ms + drng.integers(0, ms, len(bad_lines))),
        "seq": pa.array(np.arange(len(bad_lines), dtype=np.int64) + 10 * na + 10),
        "line": pa.array(bad_lines, pa.string()),
    })
    lookups = {
        "benign": pa.table({"id": np.arange(len(benign_rows)), "text": benign_rows}),
        "phrases": pa.table({"id": np.arange(len(phrase_rows)),
                             "kind": [k for k, _ in phrase_rows],
                             "text": [t for _, t in phrase_rows]}),
        "pii": pa.table({"id": np.arange(len(pii_values)), "kind": [k for k, _ in pii_values],
                         "value": [v for _, v in pii_values]}),
    }
    files = render_files(table, entries, bad, lookups, start, days, out / "gateway")

    # ---- manifest -----------------------------------------------------------------------
    per_file = {f["date"]: f for f in files}
    for name, fday in (
        ("bad_lines", bad_file_day),
        ("out_of_window", file_day[oow]),
        ("duplicates_in_file", a["day"][dup_same]),
        ("late_records", np.concatenate([file_day[late1], file_day[late3]])),
        ("resent_from_previous_file", a["day"][dup_next] + 1),
    ):
        counts = np.bincount(fday.astype(np.int64), minlength=days)
        for i, c in enumerate(counts):
            per_file[(start + timedelta(days=i)).isoformat()][name] = int(c)
    for f in files:
        f["quarantined"] = f["bad_lines"] + f["out_of_window"]
        f["loaded"] = f["lines"] - f["quarantined"] - f["duplicates_in_file"]

    calls_per_day = np.bincount(a["day"], minlength=days)
    n_lines = int(sum(f["lines"] for f in files))
    n_quarantined = int(sum(f["quarantined"] for f in files))
    untagged = (feature_mode != 0) | (segment_mode != 0)
    used, used_counts = np.unique(variant, return_counts=True)
    spend = np.where(priceable, cost, 0.0)
    feat_spend = np.bincount(a["feat"], weights=spend, minlength=len(FEATURES))
    ev = _enrich_events(events, volume.runaway_extra)

    manifest = {
        "generator": "tokenbook.demo",
        "manifest_version": MANIFEST_VERSION,
        "seed": seed,
        "days": days,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "scale": scale,
        "format": "native gateway log, JSON lines, gzip; one file per day (issue 2)",
        "files": files,
        "calls": na,
        "logical_requests": traffic.n_requests,
        "calls_per_day": {(start + timedelta(days=i)).isoformat(): int(c)
                          for i, c in enumerate(calls_per_day)},
        "features": {f.name: {"unit_of_work": f.unit_of_work, "team": f.team,
                              "cost_centre": TEAM_COST_CENTRE[f.team],
                              "calls": int((a["feat"] == i).sum()),
                              "gateway_cost_usd": round(float(feat_spend[i]), 2)}
                     for i, f in enumerate(FEATURES)},
        "teams": teams_manifest(),
        "cost_centres": sorted(set(TEAM_COST_CENTRE.values())),
        "segments": list(SEGMENTS),
        "providers": list(PROVIDERS),
        "models": [
            {"provider_raw": prov_raw[v], "model_raw": model_raw[v],
             "provider": MODELS[variants[v][2]].provider,
             "catalog_model": MODELS[variants[v][2]].catalog_model or None,
             "model_key": MODELS[variants[v][2]].key, "calls": int(c)}
            for v, c in zip(used, used_counts, strict=True)
        ],
        "unpriceable_models": [m.logged_as[0][1] for m in MODELS if m.key == UNPRICEABLE_MODEL],
        "api_keys": [{"api_key_id": key_values[k], "team": teams[k // (len(envs) * len(provs))],
                      "environment": envs[(k // len(provs)) % len(envs)],
                      "provider": provs[k % len(provs)]}
                     for k in np.unique(key_code)],
        "events": ev,
        "pii": {"by_field": pii_by_field, "by_path": pii_paths,
                "by_kind": {k: sum(v[k] for v in pii_by_field.values()) for k in PII_KINDS},
                "total": int(sum(sum(v.values()) for v in pii_by_field.values())),
                "note": "matches planted in valid, non-duplicated, in-window records only; "
                "field 'extra' = unknown top-level fields (client.ip, debug_context)"},
        "bad_lines": {**bad_counts, "total": int(len(bad_lines))},
        "late_records": {"days_1": len(late1), "days_3": len(late3),
                         "out_of_window": len(oow),
                         "out_of_window_lags_days": lag_oow.tolist()},
        "duplicates": {"same_file": len(dup_same), "next_file": len(dup_next)},
        "untagged_share": round(float(untagged.mean()), 5),
        "untagged": {"feature_missing": int((feature_mode != 0).sum()),
                     "segment_missing": int((segment_mode != 0).sum()),
                     "either_missing": int(untagged.sum()),
                     "team_missing": int((~team_ok).sum())},
        "retries": {"attempts_beyond_first": int((a["attempt"] > 1).sum()),
                    "failed_attempts": int((a["status"] != "ok").sum()),
                    "requests_failed_all_attempts": int(
                        (a["last"] & (a["status"] != "ok")).sum()),
                    "fallback_attempts": int(a["fallback"].sum()),
                    "note": "fallback attempts keep the trace_id and move to another provider "
                    "after two failures on the degraded provider"},
        "expected": {
            "rows_read": n_lines,
            "rows_quarantined": n_quarantined,
            "rows_duplicate_within_file": len(dup_same),
            "rows_loaded": n_lines - n_quarantined - len(dup_same),
            "unique_calls_after_dedupe": na - len(oow),
            "calls_generated": na,
            "note": "per file load (no --date): rows_read = loaded + quarantined + duplicates; "
            "staging then drops the next_file re-sends",
        },
    }
    eval_rows, manifest["evals"] = build_evals(seed, start, days, ev)
    (out / "evals").mkdir(parents=True, exist_ok=True)
    (out / "evals" / "evals.csv").write_text(evals_csv(eval_rows))
    # The demo organisation's own configuration (features, teams, budgets, agreements, ...):
    # `tokenbook run --demo` reads it from here, like a company reads its own config folder.
    manifest["config_dir"] = str(write_demo_config(out / "config").name)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _enrich_events(events: dict, runaway_extra: int) -> dict:
    """Events with the names a reader of the logs sees: ``model``/``from_model``/``to_model``
    are price-book model names (with ``*_model_key`` the generator's id and the provider)."""
    by_key = {m.key: m for m in MODELS}
    ev = json.loads(json.dumps(events))
    r = ev["runaway_day"]
    m = by_key[r["model"]]
    r.update(model_key=m.key, model=m.catalog_model, provider=m.provider,
             extra_requests=runaway_extra)
    sw = ev["model_switch"]
    for side in ("from", "to"):
        m = by_key[sw[f"{side}_model"]]
        sw[f"{side}_model_key"] = m.key
        sw[f"{side}_model"] = m.catalog_model
        sw[f"{side}_provider"] = m.provider
    return ev


def _bad_lines(seed: int, days: int, start: date, rng: np.random.Generator):
    """Malformed lines of every kind, a few per some files (no PII in any of them)."""
    per_kind = max(2, days // 12)
    lines: list[str] = []
    kinds: list[str] = []
    file_days: list[int] = []
    # Spread over the files, at most ceil(total / days) per file, so no small file's
    # quarantine share jumps (a loader's quality check may cap it, e.g. at 5%).
    order = np.concatenate([rng.permutation(days) for _ in range(-(-per_kind * 7 // days))])
    for ki, kind in enumerate(BAD_KINDS):
        for j in range(per_kind):
            d = int(order[ki * per_kind + j])
            h = hashlib.md5(f"tb{seed}:bad:{ki}:{j}".encode()).hexdigest()
            ts = (start + timedelta(days=d)).isoformat() + f"T{8 + j % 12:02d}:{(7 * j) % 60:02d}:13.250Z"
            rec = {"request_id": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
                   "timestamp": ts, "provider": "openai", "model": "gpt-4o-mini",
                   "input_tokens": 812, "output_tokens": 95, "cache_read_input_tokens": 0,
                   "feature": FEATURES[j % len(FEATURES)].name, "customer_segment": "smb",
                   "status": "ok", "outcome": "success"}
            if kind == "not_json":
                text = json.dumps(rec)
                text = text[: len(text) // 2]
            elif kind == "not_object":
                text = json.dumps([rec["request_id"], ts, 812, 95])
            elif kind == "missing_required":
                rec.pop(("model", "input_tokens", "timestamp", "provider")[j % 4])
                text = json.dumps(rec)
            elif kind == "wrong_type":
                rec["input_tokens"] = "many"
                text = json.dumps(rec)
            elif kind == "negative_tokens":
                rec["output_tokens"] = -12
                text = json.dumps(rec)
            elif kind == "cache_above_input":
                rec["cache_read_input_tokens"] = 1312
                text = json.dumps(rec)
            else:
                rec["timestamp"] = ("yesterday at noon", "27/13/2026 25:61")[j % 2]
                text = json.dumps(rec)
            lines.append(text)
            kinds.append(kind)
            file_days.append(d)
    counts = {k: kinds.count(k) for k in BAD_KINDS}
    return lines, counts, np.array(file_days, np.int64)
