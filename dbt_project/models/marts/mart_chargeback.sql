{#- One row per month x cost centre x team x customer segment: the gateway-priced AI cost that
    finance charges back. Calls without a team, cost centre or segment stay in the
    '(unattributed)' bucket so the month's total always equals the calls fact; the fully
    unattributed row is present every month (zero when every call was tagged), so finance
    always sees the line.
    Extension point: invoice-allocated cost joins `chargeback_lines` on the same key. -#}

with calls as (

    select
        {{ month_start('call_date') }} as month_start,
        coalesce(cost_centre, '(unattributed)') as cost_centre,
        coalesce(team, '(unattributed)') as team,
        coalesce(customer_segment, '(unattributed)') as customer_segment,
        is_priced,
        input_tokens,
        output_tokens,
        list_cost_usd,
        effective_cost_usd
    from {{ ref('fct_llm_calls') }}

),

cost_centres as (

    select
        cost_centre,
        max(cost_centre_name) as cost_centre_name,
        max(business_unit) as business_unit
    from {{ ref('teams') }}
    group by cost_centre

),

gateway_costs as (

    select
        month_start,
        cost_centre,
        team,
        customer_segment,
        count(*) as calls,
        sum(case when is_priced then 0 else 1 end) as unpriced_calls,
        sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens,
        coalesce(sum(list_cost_usd), 0) as list_cost_usd,
        coalesce(sum(effective_cost_usd), 0) as effective_cost_usd
    from calls
    group by month_start, cost_centre, team, customer_segment

),

empty_unattributed_buckets as (

    -- the explicit '(unattributed)' line of months where every call was tagged
    select distinct
        month_start,
        '(unattributed)' as cost_centre,
        '(unattributed)' as team,
        '(unattributed)' as customer_segment,
        0 as calls,
        0 as unpriced_calls,
        0 as input_tokens,
        0 as output_tokens,
        {{ to_money('0') }} as list_cost_usd,
        {{ to_money('0') }} as effective_cost_usd
    from gateway_costs
    where month_start not in (
        select month_start
        from gateway_costs
        where cost_centre = '(unattributed)'
            and team = '(unattributed)'
            and customer_segment = '(unattributed)'
    )

),

chargeback_lines as (

    select * from gateway_costs
    union all
    select * from empty_unattributed_buckets

),

month_totals as (

    select
        month_start,
        sum(list_cost_usd) as month_list_cost_usd,
        sum(effective_cost_usd) as month_effective_cost_usd
    from chargeback_lines
    group by month_start

),

final as (

    select
        chargeback_lines.month_start,
        chargeback_lines.cost_centre,
        coalesce(cost_centres.cost_centre_name, '(unattributed)') as cost_centre_name,
        coalesce(cost_centres.business_unit, '(unattributed)') as business_unit,
        chargeback_lines.team,
        chargeback_lines.customer_segment,
        {{ marts_count('chargeback_lines.calls') }} as calls,
        {{ marts_count('chargeback_lines.unpriced_calls') }} as unpriced_calls,
        {{ marts_count('chargeback_lines.input_tokens') }} as input_tokens,
        {{ marts_count('chargeback_lines.output_tokens') }} as output_tokens,
        {{ to_money('chargeback_lines.list_cost_usd') }} as list_cost_usd,
        {{ to_money('chargeback_lines.effective_cost_usd') }} as effective_cost_usd,
        {{ marts_ratio('chargeback_lines.list_cost_usd', 'month_totals.month_list_cost_usd') }}
            as share_of_month_list_cost,
        {{ marts_ratio('chargeback_lines.effective_cost_usd', 'month_totals.month_effective_cost_usd') }}
            as share_of_month_effective_cost,
        cast('USD' as {{ type_text() }}) as currency
    from chargeback_lines
    inner join month_totals
        on chargeback_lines.month_start = month_totals.month_start
    left join cost_centres
        on chargeback_lines.cost_centre = cost_centres.cost_centre

)

select * from final
