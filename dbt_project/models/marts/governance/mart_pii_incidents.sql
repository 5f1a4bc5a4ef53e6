{#- One row per load day x source x field x kind: how many PII values the redactor removed
    before load (grain, inputs, assumptions: _governance__models.yml), from
    stg_gateway__pii_redactions. -#}
with

redactions as (

    select
        load_date as incident_date,
        source,
        field,
        kind,
        source_file,
        redactions
    from {{ ref('stg_gateway__pii_redactions') }}

),

by_day as (

    select
        incident_date,
        source,
        field,
        kind,
        sum(redactions) as redactions,
        count(distinct source_file) as files
    from redactions
    where coalesce(redactions, 0) > 0
    group by incident_date, source, field, kind

),

final as (

    select
        incident_date,
        {{ tokenbook.month_start('incident_date') }} as incident_month,
        source,
        field,
        kind,
        {{ marts_count('redactions') }} as redactions,
        {{ marts_count('files') }} as files
    from by_day

)

select * from final
