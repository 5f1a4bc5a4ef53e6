{#- One row per currency x rate date (USD per unit), valid until the next rate date or for
    7 days at most (the ECB publishes business days only). -#}
with

source as (

    select * from {{ source('fx', 'fx_rates') }}

),

renamed as (

    select
        cast(upper(currency) as {{ tokenbook.type_text() }}) as currency,
        cast(rate_date as date) as rate_date,
        cast(rate_to_usd as {{ tokenbook.type_money() }}) as rate_to_usd,
        cast(source as {{ tokenbook.type_text() }}) as rate_source
    from source
    where upper(currency) != 'USD'

),

final as (

    select
        currency,
        rate_date,
        least(
            coalesce(lead(rate_date) over (partition by currency order by rate_date),
                     cast({{ dbt.dateadd('day', 7, 'rate_date') }} as date)),
            cast({{ dbt.dateadd('day', 7, 'rate_date') }} as date)
        ) as valid_to,
        rate_to_usd,
        rate_source
    from renamed

)

select * from final
