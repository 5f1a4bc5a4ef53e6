{#- One row per load date x source x source file x field x kind: how many values the redactor
    removed before load, 1:1 with raw.pii_redactions (written by every loader: gateway,
    billing, evals). Missing labels become '(unknown)'. -#}
with

source as (

    select * from {{ source('gateway', 'pii_redactions') }}

),

renamed as (

    select
        cast(load_date as date) as load_date,
        cast(coalesce(source, '(unknown)') as {{ tokenbook.type_text() }}) as source,
        cast(source_file as {{ tokenbook.type_text() }}) as source_file,
        cast(coalesce(field, '(unknown)') as {{ tokenbook.type_text() }}) as field,
        cast(coalesce(kind, '(unknown)') as {{ tokenbook.type_text() }}) as kind,
        cast(redactions as {{ dbt.type_bigint() }}) as redactions
    from source

)

select * from renamed
