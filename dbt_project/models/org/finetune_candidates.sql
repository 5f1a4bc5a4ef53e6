{#- The organisation's finetune_candidates.csv, one row per line (empty: not configured). -#}
with

source as (

    select * from {{ source('config', 'config_finetune_candidates') }}

)

select * from source
