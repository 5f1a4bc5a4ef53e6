{#- One row per call attempt (call_id = request_id), priced as the vendor invoices it.
    Incremental: each run re-reads the last `lookback_days` load dates before the table's
    latest load date, keeps the latest load of each call_id (then the latest source line)
    and replaces those call_ids, so late and re-sent records land on the next run. -#}
{{
    config(
        materialized='incremental',
        unique_key='call_id',
        incremental_strategy=('merge' if target.type == 'bigquery' else 'delete+insert'),
        on_schema_change='fail',
        partition_by=({'field': 'call_date', 'data_type': 'date', 'granularity': 'day'}
                      if target.type == 'bigquery' else none),
        cluster_by=(['feature'] if target.type == 'bigquery' else none),
        contract={'enforced': true},
    )
}}

{%- if tokenbook.is_incremental_run() -%}
    {%- set since = tokenbook.incremental_since(this, 'load_date', var('lookback_days')) -%}
{%- endif %}

with

priced_calls as (

    select * from {{ ref('int_llm_calls_priced') }}
    {% if since is defined %}where load_date >= {{ since }}{% endif %}

),

loaded_records as (

    -- narrow: only the keys go through the dedupe window
    select call_id, load_date, coalesce(source_line, -1) as source_line
    from {{ ref('stg_gateway__calls') }}
    {% if since is defined %}where load_date >= {{ since }}{% endif %}

),

latest_load as (

    select call_id, load_date, source_line
    from (
        select
            *,
            row_number() over (
                partition by call_id order by load_date desc, source_line desc
            ) as load_rank
        from loaded_records
    ) as ranked
    where load_rank = 1

),

deduplicated as (

    select priced_calls.*
    from priced_calls
    inner join latest_load
        on priced_calls.call_id = latest_load.call_id
        and priced_calls.load_date = latest_load.load_date
        and coalesce(priced_calls.source_line, -1) = latest_load.source_line

),

final as (

    select
        call_id,
        trace_id,
        attempt,
        called_at,
        call_date,
        call_week,
        call_month,
        provider,
        provider_raw,
        model,
        catalog_model,
        price_id,
        feature,
        customer_segment,
        team,
        cost_centre,
        customer_id,
        environment,
        request_class,
        api_key_id,
        project_id,
        input_tokens,
        uncached_input_tokens,
        cache_read_input_tokens,
        cache_write_input_tokens,
        cache_write_ttl,
        output_tokens,
        reasoning_tokens,
        is_batch,
        service_tier,
        status,
        is_error,
        outcome,
        quality_score,
        latency_ms,
        prompt_template_id,
        prompt_prefix_hash,
        is_priced,
        list_cost_usd,
        effective_cost_usd,
        currency,
        gateway_cost_usd,
        load_date,
        source_format,
        resolution_rule,
        pricing_mode,
        is_above_tier
    from deduplicated

)

select * from final
