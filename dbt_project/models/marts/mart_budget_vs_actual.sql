{#- One row per month x budget line. AI spend is its own budget line, at three levels:
    budget_level 'feature' (feature x cost centre, budget from budgets.csv of the organisation's
    configuration; 'not configured' when it has none),
    'cost_centre' (feature = '(all)': the sum of the cost centre's feature lines) and
    'total' (cost_centre = feature = '(all)').
    Month-to-date burn is measured as of the latest call date in the data (never the clock):
    days_elapsed counts the days of the month up to and including that date, and an open
    month is projected to its end at the month-to-date daily run rate. Variance compares the
    projected month-end (the actual, once the month is complete) with the budget; positive
    means over budget. A feature's budget applies from the month it launched. -#}

with calls as (

    select
        {{ month_start('call_date') }} as month_start,
        call_date,
        coalesce(feature, '(unattributed)') as feature,
        coalesce(cost_centre, '(unattributed)') as cost_centre,
        list_cost_usd,
        effective_cost_usd
    from {{ ref('fct_llm_calls') }}

),

as_of as (

    select max(call_date) as as_of_date from calls

),

actuals as (

    select
        month_start,
        feature,
        cost_centre,
        coalesce(sum(list_cost_usd), 0) as actual_list_cost_usd,
        coalesce(sum(effective_cost_usd), 0) as actual_effective_cost_usd
    from calls
    group by month_start, feature, cost_centre

),

budgets_configured as (

    -- 'not configured' (the organisation has no budgets.csv rows) vs 'no budget' (budgets
    -- exist, not for this line)
    select count(monthly_budget_usd) > 0 as has_budgets from {{ ref('features') }}

),

months as (

    select distinct month_start from actuals

),

budgets as (

    select
        months.month_start,
        features.feature,
        features.cost_centre,
        features.monthly_budget_usd
    from months
    cross join {{ ref('features') }} as features
    where features.launched_on is null
        or {{ month_start('features.launched_on') }} <= months.month_start

),

feature_lines as (

    select
        coalesce(actuals.month_start, budgets.month_start) as month_start,
        'feature' as budget_level,
        coalesce(actuals.cost_centre, budgets.cost_centre) as cost_centre,
        coalesce(actuals.feature, budgets.feature) as feature,
        budgets.monthly_budget_usd,
        coalesce(actuals.actual_list_cost_usd, 0) as actual_list_cost_usd,
        coalesce(actuals.actual_effective_cost_usd, 0) as actual_effective_cost_usd
    from actuals
    full outer join budgets
        on actuals.month_start = budgets.month_start
        and actuals.feature = budgets.feature
        and actuals.cost_centre = budgets.cost_centre

),

cost_centre_lines as (

    select
        month_start,
        'cost_centre' as budget_level,
        cost_centre,
        '(all)' as feature,
        sum(monthly_budget_usd) as monthly_budget_usd,
        sum(actual_list_cost_usd) as actual_list_cost_usd,
        sum(actual_effective_cost_usd) as actual_effective_cost_usd
    from feature_lines
    group by month_start, cost_centre

),

total_lines as (

    select
        month_start,
        'total' as budget_level,
        '(all)' as cost_centre,
        '(all)' as feature,
        sum(monthly_budget_usd) as monthly_budget_usd,
        sum(actual_list_cost_usd) as actual_list_cost_usd,
        sum(actual_effective_cost_usd) as actual_effective_cost_usd
    from feature_lines
    group by month_start

),

budget_lines as (

    select * from feature_lines
    union all
    select * from cost_centre_lines
    union all
    select * from total_lines

),

burn as (

    select
        budget_lines.*,
        as_of.as_of_date,
        {{ dbt.datediff('budget_lines.month_start', marts_add_months(1, 'budget_lines.month_start'), 'day') }}
            as days_in_month,
        least(
            {{ dbt.datediff('budget_lines.month_start', 'as_of.as_of_date', 'day') }} + 1,
            {{ dbt.datediff('budget_lines.month_start', marts_add_months(1, 'budget_lines.month_start'), 'day') }}
        ) as days_elapsed
    from budget_lines
    cross join as_of

),

projected as (

    select
        burn.*,
        case
            when days_elapsed >= days_in_month then actual_effective_cost_usd
            else {{ marts_money_ratio('actual_effective_cost_usd * days_in_month', 'days_elapsed') }}
        end as projected_month_end_usd,
        {{ marts_money_ratio('monthly_budget_usd * days_elapsed', 'days_in_month') }}
            as budget_to_date_usd
    from burn

),

final as (

    select
        month_start,
        cast(budget_level as {{ type_text() }}) as budget_level,
        cast(cost_centre as {{ type_text() }}) as cost_centre,
        cast(feature as {{ type_text() }}) as feature,
        as_of_date,
        {{ marts_count('days_in_month') }} as days_in_month,
        {{ marts_count('days_elapsed') }} as days_elapsed,
        days_elapsed >= days_in_month as is_month_complete,
        {{ to_money('monthly_budget_usd') }} as monthly_budget_usd,
        {{ to_money('budget_to_date_usd') }} as budget_to_date_usd,
        {{ to_money('actual_list_cost_usd') }} as actual_list_cost_usd,
        {{ to_money('actual_effective_cost_usd') }} as actual_effective_cost_usd,
        {{ marts_ratio('actual_effective_cost_usd', 'monthly_budget_usd') }} as budget_burned_share,
        {{ to_money('projected_month_end_usd') }} as projected_month_end_usd,
        {{ to_money('projected_month_end_usd - monthly_budget_usd') }} as variance_usd,
        {{ marts_ratio('projected_month_end_usd - monthly_budget_usd', 'monthly_budget_usd') }}
            as variance_pct,
        cast(case
            when monthly_budget_usd is null and not budgets_configured.has_budgets
                then 'not configured'
            when monthly_budget_usd is null then 'no budget'
            when projected_month_end_usd > monthly_budget_usd then 'over'
            else 'under'
        end as {{ type_text() }}) as budget_status,
        cast('USD' as {{ type_text() }}) as currency
    from projected
    cross join budgets_configured

)

select * from final
