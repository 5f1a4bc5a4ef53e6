{#- One row per month x cost centre x team x customer segment: the gateway-priced AI cost that
    finance charges back. Calls without a team, cost centre or segment stay in the
    '(unattributed)' bucket so the month's total always equals the calls fact.
    Extension point: invoice-allocated cost joins `gateway_costs` on the same key. -#}

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

month_totals as (

    select
        month_start,
        sum(list_cost_usd) as month_list_cost_usd,
        sum(effective_cost_usd) as month_effective_cost_usd
    from gateway_costs
    group by month_start

),

final as (

    select
        gateway_costs.month_start,
        gateway_costs.cost_centre,
        coalesce(cost_centres.cost_centre_name, '(unattributed)') as cost_centre_name,
        coalesce(cost_centres.business_unit, '(unattributed)') as business_unit,
        gateway_costs.team,
        gateway_costs.customer_segment,
        {{ marts_count('gateway_costs.calls') }} as calls,
        {{ marts_count('gateway_costs.unpriced_calls') }} as unpriced_calls,
        {{ marts_count('gateway_costs.input_tokens') }} as input_tokens,
        {{ marts_count('gateway_costs.output_tokens') }} as output_tokens,
        {{ to_money('gateway_costs.list_cost_usd') }} as list_cost_usd,
        {{ to_money('gateway_costs.effective_cost_usd') }} as effective_cost_usd,
        {{ marts_ratio('gateway_costs.list_cost_usd', 'month_totals.month_list_cost_usd') }}
            as share_of_month_list_cost,
        {{ marts_ratio('gateway_costs.effective_cost_usd', 'month_totals.month_effective_cost_usd') }}
            as share_of_month_effective_cost,
        cast('USD' as {{ type_text() }}) as currency
    from gateway_costs
    inner join month_totals
        on gateway_costs.month_start = month_totals.month_start
    left join cost_centres
        on gateway_costs.cost_centre = cost_centres.cost_centre

)

select * from final
