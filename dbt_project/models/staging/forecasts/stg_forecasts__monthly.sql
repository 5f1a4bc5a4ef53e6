{#- One row per forecast run (as_of) x series x month, 1:1 with forecast_monthly, renamed and
    cast (the columns the models read). forecast_monthly is not a raw table: forecasting/
    writes it after the first `dbt build` of a warehouse, so it may not exist yet. This model
    is the one place that handles that (typed empty rows, never an empty table created in its
    place: the report tells "no forecast yet" from an empty forecast run). Re-run it and what
    reads it after the forecast step: `dbt build --select tag:after_forecast`. -#}
{{ config(tags=['after_forecast']) }}
{%- set src = source('forecasts', 'forecast_monthly') -%}
{%- set offline_compile = flags.WHICH == 'compile' and not flags.POPULATE_CACHE -%}
{%- set exists = offline_compile or not execute
    or adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier) is not none -%}
{%- set text = tokenbook.type_text() | trim -%}
{%- set money = tokenbook.type_money() | trim -%}
{%- set columns = [
    ('as_of', 'date'), ('series_level', text), ('metric', text), ('provider', text),
    ('model', text), ('feature', text), ('month', 'date'), ('month_kind', text),
    ('p10', money), ('p50', money), ('p90', money)] -%}
with

source as (

    select
        {%- for name, type in columns %}
        cast({{ name if exists else 'null' }} as {{ type }}) as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    {%- if exists %}
    from {{ src }}
    {%- else %}
    from (select 1 as one) as empty_source
    where 1 = 0
    {%- endif %}

),

renamed as (

    select * from source

)

select * from renamed
