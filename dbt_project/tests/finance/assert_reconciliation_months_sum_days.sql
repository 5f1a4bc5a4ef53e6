{#- The month rows of mart_reconciliation are the sums of their day rows (tokens and cost on
    both sides), so the two grains can never tell different stories. -#}
with

days as (

    select
        provider,
        model,
        {{ tokenbook.month_start('period_start') }} as month_start,
        sum(gateway_tokens) as gateway_tokens,
        sum(invoice_tokens) as invoice_tokens,
        sum(gateway_list_cost_usd) as gateway_list_cost_usd,
        sum(invoice_billed_cost_usd) as invoice_billed_cost_usd
    from {{ ref('mart_reconciliation') }}
    where grain = 'day'
    group by provider, model, {{ tokenbook.month_start('period_start') }}

),

months as (

    select * from {{ ref('mart_reconciliation') }}
    where grain = 'month'

)

select days.*, months.gateway_tokens as month_gateway_tokens
from days
full outer join months
    on days.provider = months.provider
    and days.model = months.model
    and days.month_start = months.period_start
where months.period_start is null
    or days.month_start is null
    or days.gateway_tokens != months.gateway_tokens
    or days.invoice_tokens != months.invoice_tokens
    or days.gateway_list_cost_usd != months.gateway_list_cost_usd
    or days.invoice_billed_cost_usd != months.invoice_billed_cost_usd
