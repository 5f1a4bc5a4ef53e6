{#- One row per eval run, 1:1 with raw.evals (see _evals__models.yml). A warehouse where no
    evals were ever loaded has no raw.evals: then this model is empty (every lever still builds;
    routing finds no passing candidate and every switch counts as unevaluated). -#}
{%- set src = source('evals', 'evals') -%}
{%- set offline_compile = flags.WHICH == 'compile' and not flags.POPULATE_CACHE -%}
{%- set exists = offline_compile or not execute
    or adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier) is not none -%}
with

source as (

    {%- if exists %}
    select * from {{ src }}
    {%- else %}
    select
        cast(null as date) as eval_date,
        cast(null as {{ tokenbook.type_text() }}) as feature,
        cast(null as {{ tokenbook.type_text() }}) as provider,
        cast(null as {{ tokenbook.type_text() }}) as model,
        cast(null as {{ tokenbook.type_text() }}) as eval_name,
        cast(null as {{ tokenbook.type_double() }}) as score,
        cast(null as boolean) as passed,
        cast(null as {{ tokenbook.type_double() }}) as quality_bar,
        cast(null as {{ dbt.type_bigint() }}) as cases,
        cast(null as date) as load_date
    from (select 1 as one) as empty_source
    where 1 = 0
    {%- endif %}

),

renamed as (

    select
        cast(eval_date as date) as eval_date,
        cast(feature as {{ tokenbook.type_text() }}) as feature,
        cast(lower(provider) as {{ tokenbook.type_text() }}) as provider,
        cast(lower(model) as {{ tokenbook.type_text() }}) as model,
        cast(coalesce(
            {{ tokenbook.regex_extract('lower(model)', '^(.+?)-20[0-9]{2}-?[0-9]{2}-?[0-9]{2}$') }},
            lower(model)
        ) as {{ tokenbook.type_text() }}) as model_family,
        cast(eval_name as {{ tokenbook.type_text() }}) as eval_name,
        cast(score as {{ tokenbook.type_double() }}) as score,
        cast(passed as boolean) as passed,
        cast(quality_bar as {{ tokenbook.type_double() }}) as quality_bar,
        cast(cases as {{ dbt.type_bigint() }}) as cases,
        cast(load_date as date) as load_date
    from source

)

select * from renamed
