{#- The organisation's data_policies.csv, one row per line (empty: not configured). -#}
with

source as (

    select * from {{ source('config', 'config_data_policies') }}

)

select * from source
