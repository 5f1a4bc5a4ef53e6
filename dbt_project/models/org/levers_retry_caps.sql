{#- One row per feature of the organisation's retry_caps.csv (empty: every feature uses the
    default_retry_cap lever setting). -#}
with

source as (

    select * from {{ source('config', 'config_retry_caps') }}

),

renamed as (

    select feature, retry_cap, owner_note
    from source

)

select * from renamed
