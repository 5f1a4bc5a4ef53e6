{#- One row per vendor x usage day x billed currency with billing lines that could not be
    converted to USD: no rate for that currency on that day (or the 7 days before) was loaded
    with `tokenbook fx load`. Their amounts are left out of the reconciliation and the
    reconciled chargeback, never counted as dollars; load the rates and transform again. -#}
with

unconverted as (

    select * from {{ ref('int_vendor_cost_lines') }}
    where not is_converted

),

final as (

    select
        vendor,
        usage_date,
        currency,
        count(*) as lines,
        sum(billed_cost) as billed_cost,
        sum(effective_cost) as effective_cost,
        cast('no FX rate loaded for this currency and day' as {{ tokenbook.type_text() }}) as reason
    from unconverted
    group by vendor, usage_date, currency

)

select * from final
