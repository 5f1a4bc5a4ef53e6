{#- One row per lever setting: tokenbook's documented default (seed levers_settings_default)
    unless the organisation's lever_settings.csv sets it. -#}
with

defaults as (

    select * from {{ ref('levers_settings_default') }}

),

org as (

    select setting, value from {{ source('config', 'config_lever_settings') }}

),

final as (

    select
        defaults.setting,
        coalesce(org.value, defaults.value) as value,
        defaults.unit,
        defaults.description
    from defaults
    left join org
        on defaults.setting = org.setting

)

select * from final
