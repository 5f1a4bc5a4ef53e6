{#- Nothing billed is lost or duplicated between staging and int_vendor_cost_lines: per vendor
    x usage day, the LLM lines' billed cost (usage-report lines carry none) equals the rows of
    int_vendor_cost_lines, and so do the tokens (cost-report lines carry none). -#}
with

staged as (

    select
        vendor,
        usage_date,
        coalesce(sum(billed_cost), 0) as billed_cost,
        coalesce(sum(tokens), 0) as tokens
    from {{ ref('stg_billing__lines') }}
    where provider is not null
    group by vendor, usage_date

),

modelled as (

    select
        vendor,
        usage_date,
        coalesce(sum(billed_cost), 0) as billed_cost,
        coalesce(sum(tokens), 0) as tokens
    from {{ ref('int_vendor_cost_lines') }}
    group by vendor, usage_date

)

select
    coalesce(staged.vendor, modelled.vendor) as vendor,
    coalesce(staged.usage_date, modelled.usage_date) as usage_date,
    staged.billed_cost as staged_billed_cost,
    modelled.billed_cost as modelled_billed_cost,
    staged.tokens as staged_tokens,
    modelled.tokens as modelled_tokens
from staged
full outer join modelled
    on staged.vendor = modelled.vendor
    and staged.usage_date = modelled.usage_date
where staged.billed_cost is null
    or modelled.billed_cost is null
    or staged.billed_cost != modelled.billed_cost
    or staged.tokens != modelled.tokens
