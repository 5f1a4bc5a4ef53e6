"""The SQL of ``tokenbook check`` (``quality.py``): the profile aggregates (DuckDB and BigQuery
dialects), the model resolution against the price book, and the per-date metrics.

Kept apart from the suites and the run so that each reads on its own; every query here is plain
text, tested through ``quality.check_dates`` (and the BigQuery profile parsed by sqlglot).
"""

from __future__ import annotations

from datetime import date

from ingestion.gateway.schema import GATEWAY_CALLS_COLUMNS
from ingestion.quality_thresholds import closed_weekdays

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



def _lit(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def profile_queries(tables: dict[str, str], lo: date, hi: date, bigquery: bool = False,
                    checked_from: date | None = None) -> dict[str, str]:
    """The profile aggregates over load dates ``[lo, hi]``, as SQL of the warehouse's dialect
    (DuckDB, or BigQuery with ``bigquery``). ``tables``: raw table name -> qualified name.
    ``checked_from``: the first checked date (``lo`` when None); re-delivered records are
    looked for in the load dates from there on, against every earlier date of ``[lo, hi]``."""
    calls, audit, billing = tables["gateway_calls"], tables["load_audit"], tables["billing_lines"]
    between = f"between {_lit(lo)} and {_lit(hi)}"
    checked = f"between {_lit(checked_from or lo)} and {_lit(hi)}"

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
        # records of a checked date whose request_id an earlier load date already brought (an
        # exporter that re-sent an earlier day's file): per date and the date first loaded.
        # Within one load date a request_id is unique (the load's dedupe).
        "_q_redelivered": f"""
            select load_date, first_load, count(*) as calls from (
                select c.load_date, c.request_id, min(p.load_date) as first_load
                from {calls} c join {calls} p
                  on p.request_id = c.request_id and p.load_date < c.load_date
                where c.load_date {checked} and p.load_date {between}
                group by c.load_date, c.request_id) r
            group by load_date, first_load""",
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
    # the weekdays the organisation declared closed (closed_weekdays), as DuckDB's isodow
    closed = ", ".join(str(k + 1) for k in closed_weekdays(t)) or "0"  # none: no isodow is 0
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
    # A day is compared with the same weekday's days of its history when there are at least
    # min_history_days of them (an organisation's weekend can be another workload: other
    # models, prompts, tags), else with all the days of its history (the first two weeks).
    def comparable(alias: str) -> str:
        return (f"(not w.same_weekday or datediff('day', {alias}.load_date, d.d) % 7 = 0)")

    unpriced_metric = (
        f"""case when g.calls > 0 and hist.n >= {m} then
              {unpriced.format(d='d.d')} - (select median(s) from (
                  select {unpriced.format(d='h2.load_date')} as s
                  from _q_gw h2 where h2.load_date >= d.d - {h} and h2.load_date < d.d
                    and h2.calls > 0 and {comparable('h2')})) end"""
        if priced else "NULL"
    )
    # the date's unpriced (provider, model) pairs, most calls first: what to alias or price
    unpriced_models = (
        """select mo.load_date, list(coalesce(mo.provider, '?') || '/' || coalesce(mo.model, '?')
                   || ' ' || cast(mo.calls as varchar) || ' calls'
                   order by mo.calls desc, mo.provider, mo.model)[1:5] as models
           from _q_models mo join _q_resolved r
             on r.provider is not distinct from mo.provider
            and r.model is not distinct from mo.model
           where not r.priced group by mo.load_date"""
        if priced else
        "select cast(null as date) as load_date, cast(null as varchar[]) as models limit 0"
    )
    return f"""
    with days as (select unnest([{days}]) as d),
    unpriced_models as ({unpriced_models}),
    weekday as (
        select d.d, count(h.load_date) as n, median(h.calls) as calls,
               count(h.load_date) >= {m} as same_weekday
        from days d left join _q_gw h
          on h.load_date >= d.d - {h} and h.load_date < d.d and h.calls > 0
         and datediff('day', h.load_date, d.d) % 7 = 0
        group by d.d
    ),
    first_load as (  -- the first day with calls in each date's history
        select d.d, min(h.load_date) as first from days d join _q_gw h
          on h.load_date >= d.d - {h} and h.load_date < d.d and h.calls > 0
        group by d.d
    ),
    presence_hist as (
        select d.d, x.f
        from days d join weekday w on w.d = d.d
             join _q_gw h on h.load_date >= d.d - {h} and h.load_date < d.d
                         and h.calls > 0 and {comparable('h')},
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
        from days d join weekday w on w.d = d.d
        left join _q_gw h
          on h.load_date >= d.d - {h} and h.load_date < d.d and h.calls > 0
         and {comparable('h')}
        group by d.d
    ),
    redelivered as (
        select load_date, sum(calls) as calls,
               list(cast(calls as varchar) || ' first loaded on ' || cast(first_load as varchar)
                    order by first_load) as texts
        from _q_redelivered group by load_date
    ),
    bill_days as (
        select b.vendor, b.usage_date, sum(b.cost) as cost from _q_bill b group by all
    ),
    -- a vendor is expected on d when it billed 4+ of the 7 days before AND on the same weekday
    -- in at least half of the weeks since its first line in the history (a vendor whose
    -- traffic stops at weekends has no weekend lines: its healthy Saturday is not a gap)
    vendors_hist as (
        select d.d, b.vendor from days d join bill_days b
          on b.usage_date >= d.d - {h} and b.usage_date < d.d
        group by d.d, b.vendor
        having count(*) filter (where b.usage_date >= d.d - 7) >= 4
           and count(*) filter (where datediff('day', b.usage_date, d.d) % 7 = 0) >= 1
           and 2 * count(*) filter (where datediff('day', b.usage_date, d.d) % 7 = 0)
               >= datediff('day', min(b.usage_date), d.d) // 7
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
    bill_hist_both as (
        select d.d, count(r.ratio) as n_all, median(r.ratio) as ratio_all,
               count(r.ratio) filter (where datediff('day', r.call_date, d.d) % 7 = 0) as n_wd,
               median(r.ratio) filter (where datediff('day', r.call_date, d.d) % 7 = 0)
                   as ratio_wd
        from days d
        left join bill_ratio r on r.call_date >= d.d - {h} and r.call_date < d.d
        group by d.d
    ),
    bill_hist as (  -- the same weekday's ratios when there are enough, as for the calls
        select d, case when n_wd >= {m} then n_wd else n_all end as n,
               case when n_wd >= {m} then ratio_wd else ratio_all end as ratio
        from bill_hist_both
    )
    select d.d as load_date,
           coalesce(g.calls, 0) as calls,
           -- a weekday that had no call in any of the (min_history_days or more) weeks of
           -- the history is a quiet day of the organisation (a business closed at weekends),
           -- not a delivery that never arrived: not evaluable when nothing came
           -- (or a weekday declared closed in closed_weekdays: quiet from the first day)
           case when coalesce(a.rows_loaded, 0) = 0 and isodow(d.d) in ({closed}) then NULL
                when coalesce(a.rows_loaded, 0) = 0 and coalesce(w.n, 0) = 0
                     and datediff('day', fl.first, d.d) // 7 >= {m} then NULL
                else coalesce(a.rows_loaded, 0) end as rows_loaded,
           coalesce(a.rows_loaded, 0) = 0 and isodow(d.d) in ({closed}) as declared_closed,
           -- nothing came on a weekday the short history has never seen: say so (a business
           -- closed that day fails only until min_history_days weeks show it is quiet)
           case when coalesce(a.rows_loaded, 0) = 0 and coalesce(w.n, 0) = 0
                     and isodow(d.d) not in ({closed})
                     and fl.first is not null and datediff('day', fl.first, d.d) // 7 < {m} then
                ['no ' || dayname(d.d) || ' in the history yet: if the organisation is closed on '
                 || dayname(d.d) || 's, it is a quiet day from week ' || cast({m} + 1 as varchar)
                 || ' on (min_history_days)'] end as rows_loaded_text,
           datediff('day', fl.first, d.d) // 7 as weeks_known,
           a.load_id,
           coalesce(hist.n, 0) as history_n,
           coalesce(w.n, 0) as weekday_n,
           coalesce(bh.n, 0) as billing_n,
           case when w.n >= {m} and not (coalesce(g.calls, 0) = 0
                                          and isodow(d.d) in ({closed}))
                then coalesce(g.calls, 0) / w.calls end as volume_ratio,
           case when w.n >= {m} then [cast(coalesce(g.calls, 0) as varchar) || ' calls vs a median of '
                || case when w.calls = floor(w.calls) then cast(cast(w.calls as bigint) as varchar)
                        else cast(round(w.calls, 1) as varchar) end
                || ' on the same weekday'] end as volume_ratio_text,
           case when g.calls > 0 and hist.n >= {m} then
                g.no_feature / g.calls - hist.no_feature_share end as missing_feature_increase,
           case when g.calls > 0 and hist.n >= {m} then
                g.no_segment / g.calls - hist.no_segment_share end as missing_segment_increase,
           {unpriced_metric} as unpriced_share_increase,
           um.models as unpriced_share_increase_text,
           case when a.rows_read > 0 then a.rows_quarantined / a.rows_read end as quarantine_share,
           case when a.rows_read > 0 then a.rows_duplicate / a.rows_read end as duplicate_share,
           case when g.calls > 0 then coalesce(rd.calls, 0) / g.calls end as redelivered_share,
           rd.texts as redelivered_share_text,
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
    left join first_load fl on fl.d = d.d
    left join missing_vendors mv on mv.d = d.d
    left join bill_hist bh on bh.d = d.d
    left join redelivered rd on rd.load_date = d.d
    left join unpriced_models um on um.load_date = d.d
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
