{#- One row per feature x period ('week' | 'month') x period_start.
    Spend and calls fall in the period of each call. A logical request (one trace_id within a
    feature, however many attempts or fallbacks it took) falls in the period of its first
    attempt, and is one outcome when its final attempt (highest attempt, then latest call) has
    outcome 'success': retries never multiply outcomes (int_logical_requests). -#}
{%- set periods = ['week', 'month'] -%}

with calls as (

    select
        call_date,
        coalesce(feature, '(unattributed)') as feature,
        is_priced,
        list_cost_usd,
        effective_cost_usd
    from {{ ref('fct_llm_calls') }}

),

features as (

    select
        feature,
        budget_per_outcome_usd,
        value_per_outcome_usd
    from {{ ref('features') }}

),

budgets_configured as (

    -- 'not configured' (no budget per outcome anywhere in the organisation's features.csv)
    -- vs 'no budget' (budgets exist, not for this feature)
    select count(budget_per_outcome_usd) > 0 as has_budgets from features

),

daily_spend as (

    -- one row per feature x day first, so weeks and months roll up small tables
    select
        feature,
        call_date,
        count(*) as calls,
        sum(case when is_priced then 1 else 0 end) as priced_calls,
        sum(list_cost_usd) as list_cost_usd,
        sum(effective_cost_usd) as effective_cost_usd
    from calls
    group by feature, call_date

),

spend_by_period as (

    {%- for period in periods %}
    {%- set period_start = week_start('call_date') if period == 'week' else month_start('call_date') %}
    select
        feature,
        '{{ period }}' as period,
        {{ period_start }} as period_start,
        sum(calls) as calls,
        sum(priced_calls) as priced_calls,
        coalesce(sum(list_cost_usd), 0) as list_cost_usd,
        coalesce(sum(effective_cost_usd), 0) as effective_cost_usd
    from daily_spend
    group by feature, {{ period_start }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

logical_requests as (

    -- one row per feature x trace_id, dated by its first attempt; the final attempt decides
    -- its outcome
    select
        feature,
        request_started_on,
        is_outcome
    from {{ ref('int_logical_requests') }}

),

daily_requests as (

    select
        feature,
        request_started_on,
        count(*) as logical_requests,
        sum(is_outcome) as outcomes
    from logical_requests
    group by feature, request_started_on

),

requests_by_period as (

    {%- for period in periods %}
    {%- set period_start = week_start('request_started_on') if period == 'week' else month_start('request_started_on') %}
    select
        feature,
        '{{ period }}' as period,
        {{ period_start }} as period_start,
        sum(logical_requests) as logical_requests,
        sum(outcomes) as outcomes
    from daily_requests
    group by feature, {{ period_start }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

period_metrics as (

    select
        spend_by_period.feature,
        spend_by_period.period,
        spend_by_period.period_start,
        case
            when spend_by_period.period = 'week'
                then {{ marts_add_days(-7, 'spend_by_period.period_start') }}
            else {{ marts_add_months(-1, 'spend_by_period.period_start') }}
        end as previous_period_start,
        spend_by_period.calls,
        spend_by_period.priced_calls,
        coalesce(requests_by_period.logical_requests, 0) as logical_requests,
        coalesce(requests_by_period.outcomes, 0) as outcomes,
        spend_by_period.list_cost_usd,
        spend_by_period.effective_cost_usd,
        {{ marts_money_ratio('spend_by_period.effective_cost_usd', 'spend_by_period.priced_calls') }}
            as cost_per_call_usd,
        {{ marts_money_ratio('spend_by_period.effective_cost_usd', 'requests_by_period.outcomes') }}
            as cost_per_outcome_usd,
        {{ marts_money_ratio('spend_by_period.list_cost_usd', 'requests_by_period.outcomes') }}
            as list_cost_per_outcome_usd
    from spend_by_period
    left join requests_by_period
        on spend_by_period.feature = requests_by_period.feature
        and spend_by_period.period = requests_by_period.period
        and spend_by_period.period_start = requests_by_period.period_start

),

with_previous as (

    select
        current_period.*,
        previous_period.effective_cost_usd as previous_effective_cost_usd,
        previous_period.cost_per_outcome_usd as previous_cost_per_outcome_usd
    from period_metrics as current_period
    left join period_metrics as previous_period
        on current_period.feature = previous_period.feature
        and current_period.period = previous_period.period
        and current_period.previous_period_start = previous_period.period_start

),

final as (

    select
        with_previous.feature,
        cast(with_previous.period as {{ type_text() }}) as period,
        with_previous.period_start,
        with_previous.previous_period_start,
        {{ marts_count('with_previous.calls') }} as calls,
        {{ marts_count('with_previous.calls - with_previous.priced_calls') }} as unpriced_calls,
        {{ marts_count('with_previous.logical_requests') }} as logical_requests,
        {{ marts_count('with_previous.outcomes') }} as outcomes,
        {{ to_money('with_previous.list_cost_usd') }} as list_cost_usd,
        {{ to_money('with_previous.effective_cost_usd') }} as effective_cost_usd,
        {{ to_money('with_previous.cost_per_call_usd') }} as cost_per_call_usd,
        {{ to_money('with_previous.cost_per_outcome_usd') }} as cost_per_outcome_usd,
        {{ to_money('with_previous.list_cost_per_outcome_usd') }} as list_cost_per_outcome_usd,
        {{ to_money('with_previous.previous_effective_cost_usd') }}
            as previous_effective_cost_usd,
        {{ to_money('with_previous.effective_cost_usd - with_previous.previous_effective_cost_usd') }}
            as effective_cost_change_usd,
        {{ marts_ratio(
            'with_previous.effective_cost_usd - with_previous.previous_effective_cost_usd',
            'with_previous.previous_effective_cost_usd') }} as effective_cost_change_pct,
        {{ to_money('with_previous.previous_cost_per_outcome_usd') }}
            as previous_cost_per_outcome_usd,
        {{ to_money('with_previous.cost_per_outcome_usd - with_previous.previous_cost_per_outcome_usd') }}
            as cost_per_outcome_change_usd,
        {{ marts_ratio(
            'with_previous.cost_per_outcome_usd - with_previous.previous_cost_per_outcome_usd',
            'with_previous.previous_cost_per_outcome_usd') }} as cost_per_outcome_change_pct,
        {{ to_money('features.budget_per_outcome_usd') }} as budget_per_outcome_usd,
        cast(case
            when features.budget_per_outcome_usd is null and not budgets_configured.has_budgets
                then 'not configured'
            when features.budget_per_outcome_usd is null then 'no budget'
            -- spend with no outcome at all is over any budget per outcome
            when with_previous.outcomes = 0
                then case when with_previous.effective_cost_usd > 0 then 'over' else 'under' end
            when with_previous.cost_per_outcome_usd > features.budget_per_outcome_usd then 'over'
            else 'under'
        end as {{ type_text() }}) as budget_status,
        {{ to_money('features.value_per_outcome_usd') }} as value_per_outcome_usd,
        {{ to_money('features.value_per_outcome_usd - with_previous.cost_per_outcome_usd') }}
            as net_value_per_outcome_usd,
        cast('USD' as {{ type_text() }}) as currency
    from with_previous
    cross join budgets_configured
    left join features
        on with_previous.feature = features.feature

)

select * from final
