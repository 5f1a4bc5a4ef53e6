{#- The organisation's commitment_offers.csv, one row per line (empty: not configured). -#}
with

source as (

    select * from {{ source('config', 'config_commitment_offers') }}

)

select * from source
