{#- One row per eval run, 1:1 with raw.evals (see _evals__models.yml). Empty until evals are
    loaded (every lever still builds; routing finds no passing candidate and every switch
    counts as unevaluated). -#}
with

source as (

    select * from {{ source('evals', 'evals') }}

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
