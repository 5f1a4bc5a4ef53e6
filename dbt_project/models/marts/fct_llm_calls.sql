{#- One row per call attempt (call_id = request_id), priced as the vendor invoices it.
    Incremental by call date: each run rebuilds exactly the call dates touched by the gateway
    loads and price versions it has not built yet (raw.load_audit, raw.price_book_versions;
    macros/incremental.sql), however old: a restated partition's removed rows disappear, its
    changed rows change, other dates stay as they are. A rebuilt date keeps, of each call,
    the latest load (then the latest source line) across every load that holds the call. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy=tokenbook.rebuild_strategy(),
        on_schema_change='fail',
        partition_by=tokenbook.daily_partitions('call_date'),
        cluster_by=tokenbook.clustered_by(['feature']),
        contract={'enforced': true},
        pre_hook="{{ tokenbook.delete_rebuilt_partitions('call_date') }}",
        post_hook="{{ tokenbook.mark_claims_built() }}",
    )
}}

{%- set plan = tokenbook.fct_llm_calls_plan() -%}
{%- set rebuilt = tokenbook.in_dates('call_date', plan.dates) if plan.incremental else none %}

with

priced_calls as (

    select * from {{ ref('int_llm_calls_priced') }}
    {% if rebuilt %}where {{ rebuilt }}{% endif %}

),

loaded_records as (

    -- narrow: only the keys go through the dedupe window; on an incremental run, every
    -- version (any load, any date) of the calls that have one on a rebuilt date
    select call_id, load_date, coalesce(source_line, -1) as source_line
    from {{ ref('stg_gateway__calls') }}
    {%- if rebuilt %}
    where call_id in (select call_id from {{ ref('stg_gateway__calls') }} where {{ rebuilt }})
    {%- endif %}

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
        price_basis,
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
