{#- One row per logical request (trace_id), attributed to its first attempt's feature,
    provider and model family (the catalogue model without its date suffix) and dated by its
    first call_date; its attempts, and the spend on its attempts after the first (retries and
    fallbacks) and on failed attempts. mart_retry_waste sums it by feature x model x ISO week;
    the semantic model retry_requests re-aggregates it at any grain. -#}

with

attempts as (

    select
        trace_id,
        feature,
        call_date,
        provider,
        coalesce({{ tokenbook.catalog_family('catalog_model') }}, model)
            as model_family,
        is_error,
        coalesce(effective_cost_usd, {{ tokenbook.to_money('0') }}) as cost_usd,
        row_number() over (
            partition by trace_id order by attempt, called_at, call_id
        ) as attempt_order
    from {{ ref('fct_llm_calls') }}

),

final as (

    select
        trace_id,
        max(case when attempt_order = 1 then feature end) as feature,
        max(case when attempt_order = 1 then provider end) as provider,
        max(case when attempt_order = 1 then model_family end) as model_family,
        min(call_date) as request_date,
        count(*) as attempts,
        sum(case when is_error then 1 else 0 end) as failed_attempts,
        sum(cost_usd) as cost_usd,
        sum(case when attempt_order > 1 then cost_usd else {{ tokenbook.to_money('0') }} end)
            as retry_cost_usd,
        sum(case when is_error then cost_usd else {{ tokenbook.to_money('0') }} end)
            as failed_cost_usd
    from attempts
    group by trace_id

)

select * from final
