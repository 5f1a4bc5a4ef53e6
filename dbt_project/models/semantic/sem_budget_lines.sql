{#- One row per month x feature budget line of mart_budget_vs_actual (budget_level
    'feature'): the month's budget of each feature and cost centre, as the mart carries it
    (budgets are the organisation's configuration; the mart is where they meet the ledger).
    Cost-centre and total budgets are sums of these lines, which MetricFlow does itself. -#}
{{ config(materialized='view') }}

with

final as (

    select
        month_start,
        feature,
        cost_centre,
        monthly_budget_usd,
        actual_effective_cost_usd
    from {{ ref('mart_budget_vs_actual') }}
    where budget_level = 'feature'

)

select * from final
