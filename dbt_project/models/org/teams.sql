{#- One row per team of the organisation's teams.csv (empty: not configured). Keeps the name of
    the former seed, so the marts read it unchanged. -#}
with

source as (

    select * from {{ source('config', 'config_teams') }}

),

renamed as (

    select team, cost_centre, cost_centre_name, business_unit
    from source

)

select * from renamed
