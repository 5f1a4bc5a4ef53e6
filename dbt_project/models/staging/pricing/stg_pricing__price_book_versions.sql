{#- One row per loaded price version (provider x model x valid_from), as appended by
    `tokenbook prices load`. -#}
with

source as (

    select * from {{ source('pricing', 'price_book_versions') }}

),

renamed as (

    select
        cast(lower(provider) as {{ tokenbook.type_text() }}) as provider,
        cast(lower(model) as {{ tokenbook.type_text() }}) as model,
        cast(valid_from as date) as valid_from,
        {%- for col in tokenbook.price_columns() %}
        {{ tokenbook.to_money(col) }} as {{ col }},
        {%- endfor %}
        cast(tier_threshold_tokens as {{ dbt.type_bigint() }}) as tier_threshold_tokens,
        {{ tokenbook.to_money('request_fee_usd') }} as request_fee_usd,
        cast(litellm_key as {{ tokenbook.type_text() }}) as litellm_key,
        cast(litellm_provider as {{ tokenbook.type_text() }}) as litellm_provider,
        cast(source_snapshot as {{ tokenbook.type_text() }}) as source_snapshot,
        cast(version_id as {{ tokenbook.type_text() }}) as version_id

    from source

)

select * from renamed
