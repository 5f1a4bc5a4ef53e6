{#- One row per calendar month of calls: the FinOps scorecard (grain, inputs, assumptions:
    _economics__models.yml). Reads the calls fact, the cost-per-outcome, cache, routing,
    reconciliation and PII marts, and the monthly forecasts (so it runs again after the
    forecast step). -#}
{{ config(tags=['after_forecast']) }}
with

bounds as (

    select min(call_date) as first_date, max(call_date) as as_of_date
    from {{ ref('fct_llm_calls') }}

),

calls as (

    select
        call_month,
        trace_id,
        feature,
        customer_segment,
        input_tokens,
        coalesce(effective_cost_usd, 0) as effective_cost_usd
    from {{ ref('fct_llm_calls') }}

),

monthly_calls as (

    select
        call_month,
        count(*) as calls,
        count(distinct trace_id) as logical_requests,
        sum(input_tokens) as input_tokens,
        sum(effective_cost_usd) as effective_cost_usd,
        sum(case
            when coalesce(feature, '(unattributed)') = '(unattributed)'
                or coalesce(customer_segment, '(unattributed)') = '(unattributed)'
                then effective_cost_usd else 0
        end) as unattributed_cost_usd
    from calls
    group by call_month

),

feature_outcomes as (

    select
        feature,
        period_start as call_month,
        outcomes,
        effective_cost_usd,
        cost_per_outcome_usd
    from {{ ref('mart_cost_per_outcome') }}
    where period = 'month'

),

monthly_outcomes as (

    select
        call_month,
        sum(outcomes) as outcomes,
        string_agg(
            '"' || feature || '":' || coalesce(cast(cost_per_outcome_usd as {{ tokenbook.type_text() }}), 'null'),
            ',' order by feature
        ) as cost_per_outcome_pairs
    from feature_outcomes
    group by call_month

),

monthly_cache as (

    -- weeks count in the month of their Monday
    select
        {{ tokenbook.month_start('week_start') }} as call_month,
        sum(could_hit_calls) as could_hit_calls,
        sum(could_hit_calls_with_cache_read) as could_hit_calls_with_cache_read,
        sum(cache_savings_usd) as cache_savings_usd
    from {{ ref('mart_cache_efficiency') }}
    group by {{ tokenbook.month_start('week_start') }}

),

routing as (

    -- a snapshot over the routing window: it belongs to the month of its as-of date
    select
        {{ tokenbook.month_start('as_of_date') }} as call_month,
        sum(monthly_saving_usd) as routing_savings_usd
    from {{ ref('mart_routing_opportunities') }}
    group by {{ tokenbook.month_start('as_of_date') }}

),

reconciliation as (

    -- invoice billed cost vs the gateway ledger's list cost (what the invoice bills), per month
    select
        period_start as call_month,
        sum(coalesce(invoice_billed_cost_usd, 0)) as invoice_billed_cost_usd,
        sum(coalesce(gateway_list_cost_usd, 0)) as gateway_list_cost_usd
    from {{ ref('mart_reconciliation') }}
    where grain = 'month'
    group by period_start

),

monthly_pii as (

    select incident_month as call_month, sum(redactions) as pii_redactions
    from {{ ref('mart_pii_incidents') }}
    group by incident_month

),

forecasts as (

    select * from {{ ref('int_economics_forecasts') }}
    where series_level = 'total' and metric = 'spend'

),

forecast_before_month as (

    -- the latest total-spend forecast of each month made before the month began
    select month as call_month, as_of as forecast_as_of, p50 as forecast_p50_usd
    from (
        select
            forecasts.*,
            row_number() over (partition by month order by as_of desc) as recency
        from forecasts
        where as_of < month
    ) as ranked
    where recency = 1

),

scorecard as (

    select
        monthly_calls.call_month,
        monthly_calls.call_month >= bounds.first_date
            and {{ tokenbook.marts_add_months(1, 'monthly_calls.call_month') }}
                <= {{ tokenbook.marts_add_days(1, 'bounds.as_of_date') }} as is_complete_month,
        monthly_calls.calls,
        monthly_calls.logical_requests,
        coalesce(monthly_outcomes.outcomes, 0) as outcomes,
        monthly_calls.effective_cost_usd,
        monthly_outcomes.cost_per_outcome_pairs,
        monthly_calls.unattributed_cost_usd,
        monthly_calls.input_tokens,
        previous_month.input_tokens as previous_input_tokens,
        previous_month.calls as previous_calls,
        monthly_cache.could_hit_calls,
        monthly_cache.could_hit_calls_with_cache_read,
        coalesce(monthly_cache.cache_savings_usd, 0) as cache_savings_usd,
        routing.routing_savings_usd,
        coalesce(monthly_pii.pii_redactions, 0) as pii_redactions,
        reconciliation.invoice_billed_cost_usd,
        reconciliation.gateway_list_cost_usd,
        forecast_before_month.forecast_as_of,
        forecast_before_month.forecast_p50_usd
    from monthly_calls
    cross join bounds
    left join monthly_calls as previous_month
        on previous_month.call_month = {{ tokenbook.marts_add_months(-1, 'monthly_calls.call_month') }}
    left join monthly_outcomes
        on monthly_calls.call_month = monthly_outcomes.call_month
    left join monthly_cache
        on monthly_calls.call_month = monthly_cache.call_month
    left join routing
        on monthly_calls.call_month = routing.call_month
    left join monthly_pii
        on monthly_calls.call_month = monthly_pii.call_month
    left join reconciliation
        on monthly_calls.call_month = reconciliation.call_month
    left join forecast_before_month
        on monthly_calls.call_month = forecast_before_month.call_month

),

final as (

    select
        call_month as month,
        is_complete_month,
        {{ tokenbook.marts_count('calls') }} as calls,
        {{ tokenbook.marts_count('logical_requests') }} as logical_requests,
        {{ tokenbook.marts_count('outcomes') }} as outcomes,
        {{ tokenbook.to_money('effective_cost_usd') }} as effective_cost_usd,
        {{ tokenbook.marts_money_ratio('effective_cost_usd', 'outcomes') }} as cost_per_outcome_usd,
        cast('{' || coalesce(cost_per_outcome_pairs, '') || '}' as {{ tokenbook.type_text() }})
            as cost_per_outcome_by_feature_json,
        {{ tokenbook.marts_ratio('could_hit_calls_with_cache_read', 'could_hit_calls') }} as cache_hit_rate,
        {{ tokenbook.to_money('cache_savings_usd') }} as cache_savings_usd,
        {{ tokenbook.to_money('routing_savings_usd') }} as routing_savings_available_usd,
        {{ tokenbook.to_money('unattributed_cost_usd') }} as unattributed_cost_usd,
        {{ tokenbook.marts_ratio('unattributed_cost_usd', 'effective_cost_usd') }} as unattributed_share,
        forecast_as_of,
        {{ tokenbook.to_money('forecast_p50_usd') }} as forecast_p50_usd,
        case when is_complete_month then
            {{ tokenbook.marts_ratio('effective_cost_usd - forecast_p50_usd', 'forecast_p50_usd') }}
        end as forecast_error_pct,
        {{ tokenbook.marts_ratio('calls', 'logical_requests') }} as retry_amplification,
        {{ tokenbook.marts_ratio('input_tokens', 'calls') }} as input_tokens_per_call,
        {{ tokenbook.marts_ratio('input_tokens', 'calls') }}
            / nullif({{ tokenbook.marts_ratio('previous_input_tokens', 'previous_calls') }}, 0)
            as prompt_growth,
        {{ tokenbook.to_money('invoice_billed_cost_usd') }} as invoice_billed_cost_usd,
        {{ tokenbook.to_money('invoice_billed_cost_usd - gateway_list_cost_usd') }}
            as reconciliation_variance_usd,
        {{ tokenbook.marts_ratio('invoice_billed_cost_usd - gateway_list_cost_usd', 'gateway_list_cost_usd') }}
            as reconciliation_variance_pct,
        {{ tokenbook.marts_count('pii_redactions') }} as pii_redactions,
        {{ tokenbook.to_money('cache_savings_usd + coalesce(routing_savings_usd, 0)') }}
            as gateway_payback_usd,
        cast('USD' as {{ tokenbook.type_text() }}) as currency
    from scorecard

)

select * from final
