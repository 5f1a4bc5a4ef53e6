{#- The monthly forecasts the economics marts read, one row per forecast run (as_of) x series
    x month, for the series they use (total, feature, provider_model). Empty until the
    forecast step has written forecast_monthly (stg_forecasts__monthly); the marts that read it
    then show null forecast columns. Re-run them after the forecast step:
    `dbt build --select tag:after_forecast`. -#}
{{ config(tags=['after_forecast']) }}
with

forecasts as (

    select *
    from {{ ref('stg_forecasts__monthly') }}
    where series_level in ('total', 'feature', 'provider_model')

),

final as (

    select * from forecasts

)

select * from final
