{#- One row per month x customer (pseudonymised customer_id) x customer segment. Calls without
    a customer id are the '(unattributed)' customer of their segment. -#}

with calls as (

    select
        {{ month_start('call_date') }} as month_start,
        coalesce(customer_id, '(unattributed)') as customer_id,
        coalesce(customer_segment, '(unattributed)') as customer_segment,
        is_priced,
        list_cost_usd,
        effective_cost_usd
    from {{ ref('fct_llm_calls') }}

),

customer_costs as (

    select
        month_start,
        customer_id,
        customer_segment,
        count(*) as calls,
        sum(case when is_priced then 0 else 1 end) as unpriced_calls,
        coalesce(sum(list_cost_usd), 0) as list_cost_usd,
        coalesce(sum(effective_cost_usd), 0) as effective_cost_usd
    from calls
    group by month_start, customer_id, customer_segment

),

month_totals as (

    select
        month_start,
        sum(list_cost_usd) as month_list_cost_usd,
        sum(effective_cost_usd) as month_effective_cost_usd
    from customer_costs
    group by month_start

),

final as (

    select
        customer_costs.month_start,
        customer_costs.customer_id,
        customer_costs.customer_segment,
        {{ marts_count('customer_costs.calls') }} as calls,
        {{ marts_count('customer_costs.unpriced_calls') }} as unpriced_calls,
        {{ to_money('customer_costs.list_cost_usd') }} as list_cost_usd,
        {{ to_money('customer_costs.effective_cost_usd') }} as effective_cost_usd,
        {{ marts_ratio('customer_costs.list_cost_usd', 'month_totals.month_list_cost_usd') }}
            as share_of_month_list_cost,
        {{ marts_ratio('customer_costs.effective_cost_usd', 'month_totals.month_effective_cost_usd') }}
            as share_of_month_effective_cost,
        cast('USD' as {{ type_text() }}) as currency
    from customer_costs
    inner join month_totals
        on customer_costs.month_start = month_totals.month_start

)

select * from final
