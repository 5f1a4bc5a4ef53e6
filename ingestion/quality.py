"""Data-quality suites over loaded partitions, compared with their own history (``tokenbook check``).

This is a step of its own, after ingestion and before dbt: ``ingest`` never imports Great
Expectations. For each checked date D it answers "does D look like the days before it?":

1. profile (warehouse SQL, one aggregate per raw table over ``[first - history_days, last]``):
   per load date the calls, calls without ``feature`` / ``customer_segment``, non-null counts
   per column, tokens and gateway cost; the keys of ``extra`` (fields the load kept that are
   not native: see ``gateway/native.py``'s line pass) per date; (provider, model) pairs per
   date; the latest load's audit per date; billing lines per vendor and usage date; gateway
   cost per call date. On BigQuery these queries run there and only the small aggregates come
   back into a local DuckDB; on DuckDB they run in the warehouse.
2. metrics (DuckDB SQL over the profiles): one row per checked date with each metric as a
   ratio or a difference against the history, so that every threshold is a constant
   (``quality_thresholds.py``). A metric without enough history is NULL: *not evaluable*.
3. Great Expectations: one suite per concern (see :data:`CHECKS`), each expectation a
   ``ExpectColumnValuesToBeBetween`` on one metric column, all run by one checkpoint over
   the frame (one row per date); the unexpected row indices say which dates failed.
4. results: one row per (date, suite, expectation) in ``raw.validation_results`` with the
   observed value, the bounds and what to look at; a rerun of a date replaces all its rows
   (DuckDB: one transaction; BigQuery: one WRITE_TRUNCATE load job per date partition).

A result whose metric is NULL has ``success`` NULL and says why in ``observed_value``
("not evaluable: ..."): it does not fail the gate, and it is never a silent pass.
The gate (:func:`gate_failures`) fails on a failed expectation, and on a suite that should
have run for a date but has no result row.

The pipeline's own invariants (rows read = loaded + quarantined + duplicates, ids unique
within a load) are not expectations here: the load enforces them and records them in
raw.load_audit, and dbt tests the keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from ingestion.gateway.schema import GATEWAY_CALLS_COLUMNS, VALIDATION_RESULTS_COLUMNS
from ingestion.quality_thresholds import load_thresholds

RESULTS_TABLE = "_tb_validation"
CHECKPOINT = "tokenbook_check"

# Columns whose null rate is compared with history (feature and customer_segment have their
# own suite; the required fields are never null: the load quarantines such records).
_NOT_NULL_CHECKED = {
    "load_date", "request_id", "call_ts", "provider", "model", "input_tokens", "output_tokens",
    "source_format", "source_file", "source_line", "extra", "feature", "customer_segment",
}
NULL_RATE_COLUMNS: tuple[str, ...] = tuple(
    c for c, _, _ in GATEWAY_CALLS_COLUMNS if c not in _NOT_NULL_CHECKED
)
# Fields whose presence is tracked for schema drift (a field that disappears).
PRESENCE_COLUMNS: tuple[str, ...] = ("feature", "customer_segment", *NULL_RATE_COLUMNS)


@dataclass(frozen=True)
class Check:
    """One expectation: ``metric`` between ``low`` and ``high`` (threshold names, numbers or
    None for no bound)."""

    suite: str
    metric: str
    low: str | float | None
    high: str | float | None
    look_at: str


CHECKS: tuple[Check, ...] = (
    Check("gateway_freshness", "rows_loaded", 1, None,
          "no gateway record was loaded for this date: did the export run and land where "
          "the nightly looks (TOKENBOOK_GATEWAY_PATH)? raw.load_audit lists what was loaded"),
    Check("gateway_volume", "volume_ratio", "volume_ratio_min", "volume_ratio_max",
          "calls against the same weekday's median: an exporter that died or ran twice, a "
          "partial file; compare raw.load_audit rows_read with the days before"),
    Check("gateway_attribution", "missing_feature_increase", None,
          "missing_feature_increase_max",
          "more calls than usual arrive without `feature`: a release that stopped tagging, "
          "a renamed tag (see gateway_schema); group raw.gateway_calls by source_file"),
    Check("gateway_attribution", "missing_segment_increase", None,
          "missing_segment_increase_max",
          "more calls than usual arrive without `customer_segment`: a release that stopped "
          "tagging, a renamed tag (see gateway_schema)"),
    Check("gateway_pricing", "unpriced_share_increase", None, "unpriced_share_increase_max",
          "calls whose (provider, model) the price book cannot resolve: add the model with "
          "`tokenbook prices load` or an alias in the model_aliases seed"),
    Check("gateway_load", "quarantine_share", None, "quarantine_share_max",
          "records rejected by the load: raw.quarantine has each with its reason"),
    Check("gateway_load", "duplicate_share", None, "duplicate_share_max",
          "repeated request_id within the load: a file delivered twice, or a gateway that "
          "re-sends; raw.load_audit rows_duplicate per file"),
    *(
        Check("gateway_nulls", f"null_rate_increase__{c}", None, "null_rate_increase_max",
              f"`{c}` is null more often than usual: a field no longer sent or renamed")
        for c in NULL_RATE_COLUMNS
    ),
    Check("gateway_schema", "new_fields", None, "new_fields_max",
          "fields never seen in the history arrived (kept in raw.gateway_calls.extra): a "
          "field renamed upstream, or a new one to map; observed lists them"),
    Check("gateway_schema", "vanished_fields", None, "vanished_fields_max",
          "fields sent on most days of the history are absent: observed lists them"),
    Check("gateway_unit_cost", "tokens_per_call_ratio", "tokens_per_call_ratio_min",
          "tokens_per_call_ratio_max",
          "tokens per call against their median: a prompt change, a runaway loop, or token "
          "counts in another unit"),
    Check("gateway_unit_cost", "cost_per_call_ratio", "cost_per_call_ratio_min",
          "cost_per_call_ratio_max",
          "the gateway's cost per call against its median: a model switch or a price change"),
    Check("billing_coverage", "billing_vendors_missing", None, "billing_vendors_missing_max",
          "a vendor that bills daily has no line for this usage date: its export or API pull "
          "failed; observed lists the vendors"),
    Check("billing_totals", "billing_ratio_change", None, "billing_ratio_change_max",
          "billed cost against the gateway's cost for the day moved from its usual ratio: "
          "unlogged traffic, a missing gateway, or a billing restatement"),
)
GATEWAY_SUITES: tuple[str, ...] = tuple(
    dict.fromkeys(c.suite for c in CHECKS if c.suite.startswith("gateway_"))
)
BILLING_SUITES: tuple[str, ...] = tuple(
    dict.fromkeys(c.suite for c in CHECKS if c.suite.startswith("billing_"))
)


@dataclass(frozen=True)
class Outcome:
    load_date: date
    suite: str
    expectation: str
    column_name: str
    parameters: str
    success: bool | None  # None: not evaluable
    element_count: int | None
    unexpected_count: int | None
    observed_value: str | None
    min_value: float | None
    max_value: float | None
    look_at: str
    load_id: str | None = None  # the date's latest gateway load, as the check read it


@dataclass
class CheckResult:
    dates: list[date]
    outcomes: list[Outcome] = field(default_factory=list)
    suites_expected: dict[date, tuple[str, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failures() and not self.missing_suites()

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.success is False]

    def not_evaluable(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.success is None]

    def missing_suites(self) -> list[tuple[date, str]]:
        ran = {(o.load_date, o.suite) for o in self.outcomes}
        return [(d, s) for d, suites in sorted(self.suites_expected.items())
                for s in suites if (d, s) not in ran]

    def failure_lines(self) -> list[str]:
        lines = [describe(o) for o in self.failures()]
        lines += [f"{d}: suite {s} has no results (it should have run): rerun "
                  f"`tokenbook check --date {d}`" for d, s in self.missing_suites()]
        return lines


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def describe(o: Outcome) -> str:
    """One line for a person: date, suite, metric, observed, expected range, what to look at."""
    if o.min_value is not None and o.max_value is not None:
        bounds = f"[{_fmt(o.min_value)}, {_fmt(o.max_value)}]"
    elif o.min_value is not None:
        bounds = f">= {_fmt(o.min_value)}"
    else:
        bounds = f"<= {_fmt(o.max_value)}"
    return (f"{o.load_date} {o.suite}: {o.column_name} = {o.observed_value}, expected "
            f"{bounds}; look at: {o.look_at}")


# --------------------------------------------------------------------------- profiles


def _lit(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def profile_queries(tables: dict[str, str], lo: date, hi: date, bigquery: bool = False
                    ) -> dict[str, str]:
    """The profile aggregates over load dates ``[lo, hi]``, as SQL of the warehouse's dialect
    (DuckDB, or BigQuery with ``bigquery``). ``tables``: raw table name -> qualified name."""
    calls, audit, billing = tables["gateway_calls"], tables["load_audit"], tables["billing_lines"]
    between = f"between {_lit(lo)} and {_lit(hi)}"

    def count_if(cond: str) -> str:
        return f"countif({cond})" if bigquery else f"count(*) filter (where {cond})"

    blank = "nullif(trim({c}), '') is null"
    presence = ", ".join(f"count({c}) as nn__{c}" for c in PRESENCE_COLUMNS)
    if bigquery:
        # BigQuery cannot trim or count a JSON value as such: its text form
        presence = presence.replace("count(metadata)", "count(to_json_string(metadata))")
    money = "float64" if bigquery else "double"
    keys = (
        f"select load_date, k as field, count(*) as calls from {calls}, "
        f"unnest(json_keys(extra, 1)) as k where load_date {between} and extra is not null "
        "group by load_date, k"
        if bigquery else
        f"select load_date, k as field, count(*) as calls from (select load_date, "
        f"unnest(json_keys(extra)) as k from {calls} where load_date {between} "
        "and extra is not null) group by load_date, k"
    )
    latest = (
        f"select load_date, load_id from {audit} where source = 'gateway' and status = 'loaded' "
        f"and load_date {between} "
        "qualify row_number() over (partition by load_date order by finished_at desc) = 1"
    )
    day = "date(call_ts)" if bigquery else "cast(call_ts as date)"
    return {
        "_q_gw": f"""
            select load_date, count(*) as calls,
                   {count_if(blank.format(c='feature'))} as no_feature,
                   {count_if(blank.format(c='customer_segment'))} as no_segment,
                   {presence},
                   sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) as tokens,
                   cast(sum(gateway_cost_usd) as {money}) as cost,
                   count(gateway_cost_usd) as cost_calls
            from {calls} where load_date {between} group by load_date""",
        "_q_keys": keys,
        "_q_models": f"""
            select load_date, provider, model, count(*) as calls
            from {calls} where load_date {between} group by load_date, provider, model""",
        "_q_audit": f"""
            select a.load_date, max(a.load_id) as load_id, count(*) as files,
                   sum(a.rows_read) as rows_read,
                   sum(a.rows_loaded) as rows_loaded,
                   sum(a.rows_quarantined) as rows_quarantined,
                   sum(a.rows_duplicate) as rows_duplicate
            from {audit} a join ({latest}) l
              on a.load_date = l.load_date and a.load_id = l.load_id
            where a.source = 'gateway'
            group by a.load_date""",
        "_q_bill": f"""
            select usage_date, vendor, cast(sum(billed_cost) as {money}) as cost,
                   count(*) as lines
            from {billing} where usage_date {between} group by usage_date, vendor""",
        "_q_ledger": f"""
            select {day} as call_date, cast(sum(gateway_cost_usd) as {money}) as cost
            from {calls} where load_date {between} and gateway_cost_usd is not null
            group by {day}""",
    }


# Price book tables (built by dbt in the staging schema): the catalogue and the alias seeds.
PRICE_BOOK_QUERIES = {
    "_q_catalogue": "select distinct lower(provider) as provider, lower(model) as model "
                    "from {int_price_book}",
    "_q_model_aliases": "select lower(provider) as provider, lower(raw_model) as raw_model, "
                        "lower(match_type) as match_type, lower(catalog_provider) as "
                        "catalog_provider, lower(catalog_model) as catalog_model "
                        "from {model_aliases}",
    "_q_provider_aliases": "select lower(provider_alias) as provider_alias, provider "
                           "from {provider_aliases}",
}


# The resolution of int_model_resolution.sql (same rules, same order), in DuckDB SQL over the
# profile's (provider, model) pairs. Keep the two in step: a test resolves the same pairs both
# ways (tests/test_quality_suites.py).
_ROUTING_PREFIX = (
    "^((openai|anthropic|azure|azure_openai|vertex_ai|vertex_ai_beta|vertex|gemini|google|"
    "bedrock|aws_bedrock|bedrock_converse|converse|invoke|text-completion-openai)/)+"
)
RESOLUTION_SQL = f"""
with pairs as (select distinct provider, model from _q_models),
keys as (
    select provider as provider_raw, model as model_raw,
           lower(trim(coalesce(provider, ''))) as provider_key,
           lower(trim(coalesce(model, ''))) as model_key
    from pairs
),
with_prefix as (
    select *, nullif(regexp_extract(model_key, '^([a-z0-9_.-]+)/', 1), '') as model_prefix
    from keys
),
with_provider as (
    select w.*, coalesce(c.provider, p.provider, nullif(w.provider_key, '')) as provider
    from with_prefix w
    left join _q_provider_aliases c on w.provider_key = c.provider_alias
    left join _q_provider_aliases p on w.model_prefix = p.provider_alias
),
n as (
    select *,
        regexp_replace(regexp_replace(regexp_replace(regexp_replace(model_key,
            '^arn:aws:bedrock:[^/]*/', ''),
            '^(projects/[^/]+/locations/[^/]+/)?publishers/[^/]+/models/', ''),
            '{_ROUTING_PREFIX}', ''),
            '^[a-z]{{2}}(-gov)?-[a-z]+-[0-9]+/', '') as model_id
    from with_provider
),
n2 as (select *, regexp_replace(model_id, '^(us|eu|apac|global|us-gov|jp|au|ca|in)[.]', '')
                 as model_no_region from n),
n3 as (select *, regexp_replace(model_no_region, '(-v[0-9]+(:[0-9]+)?|:[0-9]+)$', '')
                 as model_no_version from n2),
n4 as (select *, regexp_replace(model_no_version,
           '^(anthropic|amazon|meta|mistral|cohere|ai21|openai|deepseek|qwen|google|writer)[.]',
           '') as model_no_vendor from n3),
n5 as (select *, regexp_replace(model_no_vendor,
           '(-[0-9]{{8}}|-[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}|@[0-9]{{8}}|@default|@latest|-latest|-[0-9]{{3}})$',
           '') as model_undated from n4),
n6 as (select *, regexp_replace(model_undated, '-(preview|exp)(-[0-9]{{2}}-[0-9]{{2,4}}|-[0-9]+)?$',
           '') as model_no_preview from n5),
candidates as (
    select n6.provider_raw, n6.model_raw, a.catalog_provider, a.catalog_model
    from n6 join _q_model_aliases a
      on (a.provider = n6.provider or a.provider = '*')
     and ((a.match_type = 'exact' and (n6.model_key = a.raw_model or n6.model_id = a.raw_model))
          or (a.match_type = 'like' and n6.model_key like a.raw_model))
    union all
    select provider_raw, model_raw, provider, unnest([model_id, model_no_region,
           model_no_version, model_no_vendor, model_undated, model_no_preview])
    from n6
)
select p.provider as provider, p.model as model,
       exists (select 1 from candidates c join _q_catalogue k
                 on c.catalog_provider = k.provider and c.catalog_model = k.model
               where c.provider_raw is not distinct from p.provider
                 and c.model_raw is not distinct from p.model) as priced
from pairs p
"""


def _metrics_sql(dates: list[date], t: dict[str, float], priced: bool) -> str:
    """One row per checked date: every metric of :data:`CHECKS` plus the texts that go with
    them (new / vanished field names, missing vendors). NULL metric = not evaluable."""
    h, m = int(t["history_days"]), int(t["min_history_days"])
    days = ", ".join(_lit(d) for d in sorted(set(dates)))
    null_rates = ",\n".join(
        f"""case when g.calls > 0 and hist.n >= {m} then
              1 - g.nn__{c} / g.calls - hist.null__{c} end as null_rate_increase__{c}"""
        for c in NULL_RATE_COLUMNS
    )
    hist_nulls = ",\n".join(
        f"median(1 - h.nn__{c} / h.calls) as null__{c}" for c in NULL_RATE_COLUMNS
    )
    present = ", ".join(
        f"{{'f': '{c}', 'share': h.nn__{c} / h.calls}}" for c in PRESENCE_COLUMNS
    )
    present_today = ", ".join(f"{{'f': '{c}', 'n': g.nn__{c}}}" for c in PRESENCE_COLUMNS)
    unpriced = (
        """(select coalesce(sum(mo.calls) filter (where not r.priced), 0) / sum(mo.calls)
            from _q_models mo join _q_resolved r
              on r.provider is not distinct from mo.provider
             and r.model is not distinct from mo.model
            where mo.load_date = {d})"""
    )
    unpriced_metric = (
        f"""case when g.calls > 0 and hist.n >= {m} then
              {unpriced.format(d='d.d')} - (select median(s) from (
                  select {unpriced.format(d='h2.load_date')} as s
                  from _q_gw h2 where h2.load_date >= d.d - {h} and h2.load_date < d.d
                    and h2.calls > 0)) end"""
        if priced else "NULL"
    )
    return f"""
    with days as (select unnest([{days}]) as d),
    presence_hist as (
        select d.d, x.f
        from days d join _q_gw h on h.load_date >= d.d - {h} and h.load_date < d.d
                                and h.calls > 0,
             unnest([{present}]) as u(x)
        group by d.d, x.f
        having median(x.share) >= 0.5
    ),
    keys_hist as (
        select distinct d.d, k.field from days d join _q_keys k
          on k.load_date >= d.d - {h} and k.load_date < d.d
    ),
    hist as (
        select d.d, count(h.load_date) as n,
               median(h.no_feature / h.calls) as no_feature_share,
               median(h.no_segment / h.calls) as no_segment_share,
               median(h.tokens / h.calls) as tokens_per_call,
               median(h.cost / nullif(h.cost_calls, 0)) as cost_per_call,
               {hist_nulls}
        from days d left join _q_gw h
          on h.load_date >= d.d - {h} and h.load_date < d.d and h.calls > 0
        group by d.d
    ),
    weekday as (
        select d.d, count(h.load_date) as n, median(h.calls) as calls
        from days d left join _q_gw h
          on h.load_date >= d.d - {h} and h.load_date < d.d and h.calls > 0
         and datediff('day', h.load_date, d.d) % 7 = 0
        group by d.d
    ),
    bill_days as (
        select b.vendor, b.usage_date, sum(b.cost) as cost from _q_bill b group by all
    ),
    vendors_hist as (
        select d.d, b.vendor from days d join bill_days b
          on b.usage_date >= d.d - 7 and b.usage_date < d.d
        group by d.d, b.vendor having count(*) >= 4
    ),
    missing_vendors as (
        select v.d, list(v.vendor order by v.vendor) as vendors
        from vendors_hist v
        where not exists (select 1 from bill_days b where b.vendor = v.vendor
                          and b.usage_date = v.d)
        group by v.d
    ),
    bill_ratio as (
        select l.call_date, (select sum(cost) from bill_days b where b.usage_date = l.call_date)
               / nullif(l.cost, 0) as ratio
        from _q_ledger l
    ),
    bill_hist as (
        select d.d, count(r.ratio) as n, median(r.ratio) as ratio from days d
        left join bill_ratio r on r.call_date >= d.d - {h} and r.call_date < d.d
        group by d.d
    )
    select d.d as load_date,
           coalesce(g.calls, 0) as calls,
           coalesce(a.rows_loaded, 0) as rows_loaded,
           a.load_id,
           case when w.n >= {m} then coalesce(g.calls, 0) / w.calls end as volume_ratio,
           case when g.calls > 0 and hist.n >= {m} then
                g.no_feature / g.calls - hist.no_feature_share end as missing_feature_increase,
           case when g.calls > 0 and hist.n >= {m} then
                g.no_segment / g.calls - hist.no_segment_share end as missing_segment_increase,
           {unpriced_metric} as unpriced_share_increase,
           case when a.rows_read > 0 then a.rows_quarantined / a.rows_read end as quarantine_share,
           case when a.rows_read > 0 then a.rows_duplicate / a.rows_read end as duplicate_share,
           {null_rates},
           case when g.calls > 0 and hist.n >= {m} then coalesce(len(new_f.fields), 0) end
               as new_fields,
           new_f.fields as new_fields_text,
           case when g.calls > 0 and hist.n >= {m} then coalesce(len(gone.fields), 0) end
               as vanished_fields,
           gone.fields as vanished_fields_text,
           case when g.calls > 0 and hist.n >= {m} then
                (g.tokens / g.calls) / nullif(hist.tokens_per_call, 0) end
               as tokens_per_call_ratio,
           case when g.cost_calls > 0 and hist.n >= {m} then
                (g.cost / g.cost_calls) / nullif(hist.cost_per_call, 0) end
               as cost_per_call_ratio,
           case when exists (select 1 from vendors_hist v where v.d = d.d)
                then coalesce(len(mv.vendors), 0) end as billing_vendors_missing,
           mv.vendors as billing_vendors_missing_text,
           case when bh.n >= {m} then
                abs((select ratio from bill_ratio r where r.call_date = d.d)
                    / nullif(bh.ratio, 0) - 1) end as billing_ratio_change
    from days d
    left join _q_gw g on g.load_date = d.d
    left join _q_audit a on a.load_date = d.d
    left join hist on hist.d = d.d
    left join weekday w on w.d = d.d
    left join missing_vendors mv on mv.d = d.d
    left join bill_hist bh on bh.d = d.d
    left join lateral (
        select list(k.field order by k.field) as fields from _q_keys k
        where k.load_date = d.d
          and not exists (select 1 from keys_hist kh where kh.d = d.d and kh.field = k.field)
    ) new_f on true
    left join lateral (
        select list(p.f order by p.f) as fields from presence_hist p
        where p.d = d.d and g.calls > 0
          and list_filter([{present_today}], lambda x: x.f = p.f)[1].n = 0
    ) gone on true
    order by d.d
    """


# --------------------------------------------------------------------------- GX


class _Suites:
    """GX context, one suite per concern, one checkpoint over all of them."""

    def __init__(self, thresholds: dict[str, float]) -> None:
        for name in ("great_expectations", "great_expectations.core", "py.warnings"):
            logging.getLogger(name).setLevel(logging.ERROR)
        from ingestion.gx_import import import_gx

        gx = import_gx()
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.ctx = ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        batch = ctx.data_sources.add_pandas("tokenbook_partitions").add_dataframe_asset(
            "daily_metrics").add_batch_definition_whole_dataframe("dates")
        self.by_suite: dict[str, list[Check]] = {}
        for c in CHECKS:
            self.by_suite.setdefault(c.suite, []).append(c)
        validations = []
        for suite, checks in self.by_suite.items():
            exps = [
                gxe.ExpectColumnValuesToBeBetween(
                    column=c.metric, min_value=_bound(c.low, thresholds),
                    max_value=_bound(c.high, thresholds))
                for c in checks
            ]
            s = ctx.suites.add(gx.ExpectationSuite(name=suite, expectations=exps))
            validations.append(ctx.validation_definitions.add(
                gx.ValidationDefinition(name=suite, data=batch, suite=s)))
        self.checkpoint = ctx.checkpoints.add(gx.Checkpoint(
            name=CHECKPOINT, validation_definitions=validations,
            result_format={"result_format": "COMPLETE", "exclude_unexpected_values": True,
                           "return_unexpected_index_query": False}))

    def run(self, frame) -> dict[tuple[str, str], tuple[bool, set[int]]]:
        """(suite, metric) -> (GX's verdict, row positions GX found outside the bounds)."""
        result = self.checkpoint.run(batch_parameters={"dataframe": frame})
        out = {}
        for vr in result.run_results.values():
            suite = vr.suite_name
            for r in vr.results:
                column = r.expectation_config.kwargs["column"]
                rows = set((r.result or {}).get("unexpected_index_list") or [])
                out[(suite, column)] = (bool(r.success), rows)
        return out


def _bound(value: str | float | None, thresholds: dict[str, float]) -> float | None:
    if value is None:
        return None
    return thresholds[value] if isinstance(value, str) else float(value)


# --------------------------------------------------------------------------- the run


def _tables_exist(con, names: list[str]) -> bool:
    for name in names:
        schema, _, table = name.rpartition(".")
        row = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? "
            "and table_name = ?", [schema, table]).fetchall()[0]
        if not row[0]:
            return False
    return True


def profile_duckdb(con, lo: date, hi: date, schema: str = "raw",
                   staging: str = "staging") -> bool:
    """Profile tables in TEMP tables of the warehouse connection ``con``; returns whether the
    price book (dbt's staging.int_price_book and alias seeds) is there to resolve models."""
    from ingestion.gateway.duckdb_sink import ensure_raw_tables

    ensure_raw_tables(con, schema)
    from ingestion.billing.schema import BILLING_LINES_COLUMNS
    from ingestion.gateway.schema import duckdb_ddl

    con.execute(duckdb_ddl(f"{schema}.billing_lines", BILLING_LINES_COLUMNS))
    tables = {n: f"{schema}.{n}" for n in ("gateway_calls", "load_audit", "billing_lines")}
    for name, sql in profile_queries(tables, lo, hi).items():
        con.execute(f"create or replace temp table {name} as {sql}")
    book = {"int_price_book": f"{staging}.int_price_book",
            "model_aliases": f"{staging}.model_aliases",
            "provider_aliases": f"{staging}.provider_aliases"}
    if not _tables_exist(con, list(book.values())):
        return False
    for name, sql in PRICE_BOOK_QUERIES.items():
        con.execute(f"create or replace temp table {name} as {sql.format(**book)}")
    return True


def _load_arrow(con, name: str, arrow) -> None:
    """TEMP table ``name`` on the local DuckDB ``con`` from an Arrow table."""
    con.register(f"{name}_arrow", arrow)
    con.execute(f"create or replace temp table {name} as select * from {name}_arrow").fetchall()
    con.unregister(f"{name}_arrow")


def profile_bigquery(client, wh, con, lo: date, hi: date) -> bool:
    """The same profile tables, computed by BigQuery and loaded into the local DuckDB ``con``
    (aggregates only: a few rows per date). Returns whether the price book is there."""
    from google.api_core.exceptions import NotFound

    tables = {n: wh.table("raw", n) for n in ("gateway_calls", "load_audit", "billing_lines")}
    for name, sql in profile_queries(tables, lo, hi, bigquery=True).items():
        try:
            arrow = client.query(sql).result().to_arrow()
        except NotFound as exc:
            raise RuntimeError(f"tokenbook check: {exc} (nothing loaded into this warehouse "
                               "yet? run `tokenbook ingest` first)") from exc
        _load_arrow(con, name, arrow)
    book = {"int_price_book": wh.table("staging", "int_price_book"),
            "model_aliases": wh.table("staging", "model_aliases"),
            "provider_aliases": wh.table("staging", "provider_aliases")}
    for name, sql in PRICE_BOOK_QUERIES.items():
        try:
            arrow = client.query(sql.format(**book)).result().to_arrow()
        except NotFound:
            return False
        _load_arrow(con, name, arrow)
    return True


def evaluate(con, dates: Iterable[date], thresholds: dict[str, float], priced: bool
             ) -> CheckResult:
    """Metrics from the profile tables on ``con``, the GX suites over them, the outcomes."""
    dates = sorted(set(dates))
    result = CheckResult(dates=dates)
    if not dates:
        return result
    if priced:
        con.execute(f"create or replace temp table _q_resolved as {RESOLUTION_SQL}")
    else:
        result.notes.append(
            "the price book (dbt's int_price_book) is not in the warehouse yet: the unpriced "
            "share is not evaluable until `tokenbook transform` has run once")
    frame = con.sql(_metrics_sql(dates, thresholds, priced)).df()
    billing = bool(con.execute("select count(*) from _q_bill").fetchall()[0][0])
    for d in dates:
        result.suites_expected[d] = GATEWAY_SUITES + (BILLING_SUITES if billing else ())
    metrics = [c.metric for c in CHECKS]
    frame = frame.reset_index(drop=True)
    gx_frame = frame[metrics].astype("float64")
    verdicts = _Suites(thresholds).run(gx_frame)
    for c in CHECKS:
        if c.suite in BILLING_SUITES and not billing:
            continue
        ok, bad_rows = verdicts[(c.suite, c.metric)]
        low, high = _bound(c.low, thresholds), _bound(c.high, thresholds)
        params = json.dumps({"column": c.metric, "min_value": low, "max_value": high},
                            sort_keys=True)
        for i, d in enumerate(dates):
            value = gx_frame.at[i, c.metric]
            evaluable = bool(value == value)  # NaN (NULL) is not evaluable
            success = (i not in bad_rows) if evaluable else None
            result.outcomes.append(Outcome(
                load_date=d, suite=c.suite, expectation="expect_column_values_to_be_between",
                column_name=c.metric, parameters=params, success=success,
                element_count=int(frame.at[i, "calls"]),
                unexpected_count=None if success is None else int(not success),
                observed_value=_observed(frame, gx_frame, i, c, evaluable, thresholds,
                                         priced),
                min_value=low, max_value=high, look_at=c.look_at,
                load_id=_text(frame.at[i, "load_id"])))
        if not ok and not bad_rows:
            raise RuntimeError(f"GX failed {c.suite}.{c.metric} without naming a date")
    return result


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _observed(frame, values, i: int, c: Check, evaluable: bool, t: dict[str, float],
              priced: bool) -> str:
    if not evaluable:
        if c.metric == "unpriced_share_increase" and not priced:
            return "not evaluable: the price book is not in the warehouse before the first dbt run"
        if c.metric in {"quarantine_share", "duplicate_share"}:
            return "not evaluable: no gateway load recorded for this date"
        if c.metric == "cost_per_call_ratio":
            return ("not evaluable: no gateway cost (cost_usd) on this date or in "
                    f"{int(t['min_history_days'])} days of its history")
        return (f"not evaluable: fewer than {int(t['min_history_days'])} comparable days in "
                f"the {int(t['history_days'])} days before, or no call on this date")
    value = float(values.at[i, c.metric])
    text = f"{value:.4g}"
    detail = f"{c.metric}_text"
    if detail in frame.columns:
        names = frame.at[i, detail]
        if hasattr(names, "__len__") and not isinstance(names, str) and len(names):
            text += " (" + ", ".join(str(n) for n in names) + ")"
    return text


def store_results(con, result: CheckResult) -> None:
    """TEMP table ``_tb_validation`` (columns of raw.validation_results) from ``result``."""
    import pyarrow as pa

    cols = ", ".join(f"{n} {t}" for n, t, _ in VALIDATION_RESULTS_COLUMNS)
    con.execute(f"create or replace temp table {RESULTS_TABLE} ({cols})")
    if not result.outcomes:
        return
    data = {
        "load_date": [o.load_date for o in result.outcomes],
        "checkpoint": [CHECKPOINT] * len(result.outcomes),
        "data_asset": ["daily_metrics"] * len(result.outcomes),
        "expectation": [o.expectation for o in result.outcomes],
        "column_name": [o.column_name for o in result.outcomes],
        "parameters": [o.parameters for o in result.outcomes],
        "success": [o.success for o in result.outcomes],
        "element_count": [o.element_count for o in result.outcomes],
        "unexpected_count": [o.unexpected_count for o in result.outcomes],
        "observed_value": [o.observed_value for o in result.outcomes],
        "suite": [o.suite for o in result.outcomes],
        "min_value": [o.min_value for o in result.outcomes],
        "max_value": [o.max_value for o in result.outcomes],
        "look_at": [o.look_at for o in result.outcomes],
        "load_id": [o.load_id for o in result.outcomes],
    }
    types = {"DATE": pa.date32(), "VARCHAR": pa.string(), "BOOLEAN": pa.bool_(),
             "BIGINT": pa.int64(), "DOUBLE": pa.float64()}
    table = pa.table({n: pa.array(data[n], type=types[t]) for n, t, _ in
                      VALIDATION_RESULTS_COLUMNS})
    con.from_arrow(table).insert_into(RESULTS_TABLE)


def migrate_results_table(con, schema: str = "raw") -> None:
    """Add the columns this version stores to an older raw.validation_results (DuckDB)."""
    for name, ddb, _ in VALIDATION_RESULTS_COLUMNS:
        con.execute(f"alter table {schema}.validation_results add column if not exists "
                    f"{name} {ddb}")


def check_dates(settings, dates: Iterable[date], thresholds: dict[str, float] | None = None,
                client=None) -> CheckResult:
    """Profile, evaluate and store the results of ``dates`` in the configured warehouse
    (``tokenbook check``). Raises ThresholdsError for an invalid thresholds file."""
    from tokenbook.warehouse import connect_duckdb, parse_warehouse

    dates = sorted(set(dates))
    if not dates:
        raise ValueError("no date to check")
    t = load_thresholds() if thresholds is None else thresholds
    lo, hi = dates[0] - timedelta(days=int(t["history_days"])), dates[-1]
    wh = parse_warehouse(settings.warehouse)
    if wh.kind == "duckdb":
        from ingestion.gateway.duckdb_sink import DuckDBSink

        con = connect_duckdb(wh)
        try:
            priced = profile_duckdb(con, lo, hi)
            result = evaluate(con, dates, t, priced)
            store_results(con, result)
            migrate_results_table(con)
            DuckDBSink().replace_validation_results(con, dates, RESULTS_TABLE)
        finally:
            con.close()
        return result
    import duckdb

    from ingestion.bigquery import BigQuerySink

    sink = BigQuerySink.from_settings(settings, client=client)
    con = duckdb.connect()
    try:
        priced = profile_bigquery(sink.client, wh, con, lo, hi)
        result = evaluate(con, dates, t, priced)
        store_results(con, result)
        sink.replace_validation_results(con, dates, RESULTS_TABLE)
    finally:
        con.close()
    return result
