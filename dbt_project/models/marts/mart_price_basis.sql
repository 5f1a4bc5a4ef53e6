{#- One row per month x provider x catalogue model x price basis: how much spend is priced
    with the price in force on the call's date, and how much with the earliest known price of
    a model whose calls predate every price version we hold. -#}
with

priced as (

    select * from {{ ref('fct_llm_calls') }}
    where is_priced

),

by_basis as (

    select
        call_month as month_start,
        provider,
        catalog_model,
        price_basis,
        min(call_date) as first_call_date,
        max(call_date) as last_call_date,
        count(*) as calls,
        sum(list_cost_usd) as list_cost_usd,
        sum(effective_cost_usd) as effective_cost_usd
    from priced
    group by call_month, provider, catalog_model, price_basis

),

final as (

    select
        by_basis.*,
        case
            when sum(effective_cost_usd) over (partition by month_start) = 0 then null
            else cast(effective_cost_usd as {{ tokenbook.type_double() }})
                / cast(sum(effective_cost_usd) over (partition by month_start) as {{ tokenbook.type_double() }})
        end as share_of_month_effective_cost
    from by_basis

)

select * from final
