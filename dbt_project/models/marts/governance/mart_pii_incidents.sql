{#- One row per load day x source x field x kind: how many PII values the redactor removed
    before load (grain, inputs, assumptions: _governance__models.yml). raw.pii_redactions is
    written by ingestion; a warehouse where nothing was ever loaded has no such table, and this
    mart is then empty instead of failing the build. -#}
{%- set src = source('gateway', 'pii_redactions') -%}
{%- set offline_compile = flags.WHICH == 'compile' and not flags.POPULATE_CACHE -%}
{%- set exists = offline_compile or not execute
    or adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier) is not none -%}
with

redactions as (

    {%- if exists %}
    select
        cast(load_date as date) as incident_date,
        cast(coalesce(source, '(unknown)') as {{ tokenbook.type_text() }}) as source,
        cast(coalesce(field, '(unknown)') as {{ tokenbook.type_text() }}) as field,
        cast(coalesce(kind, '(unknown)') as {{ tokenbook.type_text() }}) as kind,
        source_file,
        redactions
    from {{ src }}
    {%- else %}
    select
        cast(null as date) as incident_date,
        cast(null as {{ tokenbook.type_text() }}) as source,
        cast(null as {{ tokenbook.type_text() }}) as field,
        cast(null as {{ tokenbook.type_text() }}) as kind,
        cast(null as {{ tokenbook.type_text() }}) as source_file,
        cast(null as {{ dbt.type_bigint() }}) as redactions
    from (select 1 as one) as empty_source
    where 1 = 0
    {%- endif %}

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
