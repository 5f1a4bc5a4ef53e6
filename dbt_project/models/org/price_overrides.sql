{#- One row per negotiated price or discount of the organisation's negotiated_prices.csv,
    effective-dated (valid_from inclusive, valid_to exclusive; periods of one provider x model
    never overlap: `tokenbook config check`). Empty: effective cost = list cost. -#}
with

source as (

    select * from {{ source('config', 'config_negotiated_prices') }}

),

renamed as (

    select
        provider,
        model,
        valid_from,
        valid_to,
        discount_pct,
        input_per_mtok,
        cache_read_per_mtok,
        cache_write_per_mtok,
        output_per_mtok,
        note
    from source

)

select * from renamed
