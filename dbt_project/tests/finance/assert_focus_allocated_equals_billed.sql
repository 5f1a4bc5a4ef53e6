{#- Allocation invariant: the FOCUS rows of every invoice line add up to the line exactly
    (billed and effective cost), and per vendor x billing month to the invoice lines. Fails
    with one row per line or vendor-month that does not add up. -#}
with

lines as (

    select vendor_line_id, vendor, billing_period, billed_cost, effective_cost
    from {{ ref('int_vendor_cost_lines') }}
    where billed_cost is not null

),

allocated as (

    select
        x_vendor_line_id as vendor_line_id,
        sum(billed_cost) as billed_cost,
        sum(effective_cost) as effective_cost
    from {{ ref('fct_focus_cost') }}
    group by x_vendor_line_id

),

per_line as (

    select
        cast('line' as {{ tokenbook.type_text() }}) as level,
        lines.vendor_line_id as id,
        lines.billed_cost as invoice_billed,
        allocated.billed_cost as allocated_billed
    from lines
    left join allocated
        on lines.vendor_line_id = allocated.vendor_line_id
    where allocated.billed_cost is null
        or allocated.billed_cost != lines.billed_cost
        or allocated.effective_cost != lines.effective_cost

),

vendor_months as (

    select
        cast('vendor_month' as {{ tokenbook.type_text() }}) as level,
        {{ dbt.concat(["lines.vendor", "'|'", "cast(lines.billing_period as " ~ tokenbook.type_text() ~ ")"]) }} as id,
        sum(lines.billed_cost) as invoice_billed,
        max(focus.billed_cost) as allocated_billed
    from lines
    left join (
        select x_vendor, cast(billing_period_start as date) as billing_period,
            sum(billed_cost) as billed_cost
        from {{ ref('fct_focus_cost') }}
        group by x_vendor, cast(billing_period_start as date)
    ) as focus
        on lines.vendor = focus.x_vendor
        and lines.billing_period = focus.billing_period
    group by lines.vendor, lines.billing_period
    having max(focus.billed_cost) is null or sum(lines.billed_cost) != max(focus.billed_cost)

)

select * from per_line
union all
select * from vendor_months
