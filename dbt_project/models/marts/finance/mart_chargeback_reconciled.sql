{#- One row per month x cost centre x team x customer segment: the gateway-priced cost
    (mart_chargeback) beside the invoice cost allocated to the same bucket by usage share
    (fct_focus_cost), so finance sees one reconciled figure per team: `reconciled_cost_usd` is
    the invoice's effective cost (what is paid), the gateway figure explains it.
    Buckets only one side has stay (zeros on the other): self-hosted usage has no invoice;
    usage billed for keys the gateway never logged lands in '(unattributed)'. -#}
{%- set money = tokenbook.type_money() -%}
with

gateway as (

    select
        month_start,
        cost_centre,
        team,
        customer_segment,
        calls,
        list_cost_usd as gateway_list_cost_usd,
        effective_cost_usd as gateway_effective_cost_usd
    from {{ ref('mart_chargeback') }}

),

invoice as (

    select
        {{ tokenbook.month_start('x_usage_date') }} as month_start,
        x_cost_centre as cost_centre,
        x_team as team,
        x_customer_segment as customer_segment,
        -- converted to USD (lines with no FX rate are left out: mart_unconverted_billing)
        coalesce(sum(x_billed_cost_usd), 0) as invoice_billed_cost_usd,
        coalesce(sum(x_effective_cost_usd), 0) as invoice_effective_cost_usd,
        coalesce(sum(x_list_cost_usd), 0) as invoice_list_cost_usd
    from {{ ref('fct_focus_cost') }}
    group by {{ tokenbook.month_start('x_usage_date') }}, x_cost_centre, x_team,
        x_customer_segment

),

joined as (

    select
        coalesce(g.month_start, i.month_start) as month_start,
        coalesce(g.cost_centre, i.cost_centre) as cost_centre,
        coalesce(g.team, i.team) as team,
        coalesce(g.customer_segment, i.customer_segment) as customer_segment,
        coalesce(g.calls, 0) as calls,
        coalesce(g.gateway_list_cost_usd, 0) as gateway_list_cost_usd,
        coalesce(g.gateway_effective_cost_usd, 0) as gateway_effective_cost_usd,
        coalesce(i.invoice_billed_cost_usd, 0) as invoice_billed_cost_usd,
        coalesce(i.invoice_effective_cost_usd, 0) as invoice_effective_cost_usd,
        coalesce(i.invoice_list_cost_usd, 0) as invoice_list_cost_usd
    from gateway as g
    full outer join invoice as i
        on g.month_start = i.month_start
        and g.cost_centre = i.cost_centre
        and g.team = i.team
        and g.customer_segment = i.customer_segment

),

final as (

    select
        month_start,
        cost_centre,
        team,
        customer_segment,
        cast(calls as {{ dbt.type_bigint() }}) as calls,
        cast(gateway_list_cost_usd as {{ money }}) as gateway_list_cost_usd,
        cast(gateway_effective_cost_usd as {{ money }}) as gateway_effective_cost_usd,
        cast(invoice_billed_cost_usd as {{ money }}) as invoice_billed_cost_usd,
        cast(invoice_effective_cost_usd as {{ money }}) as invoice_effective_cost_usd,
        cast(invoice_list_cost_usd as {{ money }}) as invoice_list_cost_usd,
        cast(invoice_effective_cost_usd as {{ money }}) as reconciled_cost_usd,
        cast(invoice_billed_cost_usd - gateway_effective_cost_usd as {{ money }})
            as variance_usd,
        {{ tokenbook.marts_ratio('invoice_billed_cost_usd - gateway_effective_cost_usd',
            'gateway_effective_cost_usd') }} as variance_pct,
        cast('USD' as {{ tokenbook.type_text() }}) as currency
    from joined

)

select * from final
