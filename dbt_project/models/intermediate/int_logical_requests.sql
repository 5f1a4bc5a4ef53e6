{#- One row per logical request: a trace_id within a feature (however many attempts or
    fallbacks it took), dated by its first attempt, and an outcome when its final attempt
    (highest attempt, then latest call) has outcome 'success': retries never multiply
    outcomes. mart_cost_per_outcome counts it by feature x week / month; the semantic model
    logical_requests re-aggregates it at any grain. -#}
with

calls as (

    select
        call_id,
        trace_id,
        coalesce(attempt, 1) as attempt,
        called_at,
        call_date,
        coalesce(feature, '(unattributed)') as feature,
        outcome
    from {{ ref('fct_llm_calls') }}

),

attempts_ranked as (

    select
        feature,
        trace_id,
        outcome,
        min(call_date) over (partition by feature, trace_id) as request_started_on,
        row_number() over (
            partition by feature, trace_id
            order by attempt desc, called_at desc, call_id desc
        ) as attempts_from_last
    from calls

),

final as (

    select
        feature,
        trace_id,
        request_started_on,
        case when outcome = 'success' then 1 else 0 end as is_outcome
    from attempts_ranked
    where attempts_from_last = 1

)

select * from final
