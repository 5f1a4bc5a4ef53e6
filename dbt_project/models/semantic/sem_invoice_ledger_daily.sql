{#- One row per day x provider x model family of mart_reconciliation (its 'day' grain): the
    invoice's billed cost beside the gateway ledger's list cost. MetricFlow sums the days to
    any coarser grain; the mart's own 'month' rows are the same sums. -#}
{{ config(materialized='view') }}

with

final as (

    select
        period_start as usage_date,
        provider,
        model as model_family,
        invoice_billed_cost_usd,
        gateway_list_cost_usd,
        gateway_effective_cost_usd,
        cost_variance_usd,
        invoice_tokens,
        gateway_tokens
    from {{ ref('mart_reconciliation') }}
    where grain = 'day'

)

select * from final
