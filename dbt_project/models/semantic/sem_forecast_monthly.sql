{#- One row per spend-forecast series x month: the LATEST forecast run (highest as_of) for
    that month, from forecast_monthly (written by forecasting/ after dbt builds the marts;
    empty until then, through int_economics_forecasts). series_level says what a row is a
    forecast of: 'total', 'feature' (one row per feature) or 'provider_model'. Re-run after
    the forecast step: `dbt build --select tag:after_forecast`. -#}
{{ config(materialized='view', tags=['after_forecast']) }}

with

spend_forecasts as (

    select *
    from {{ ref('int_economics_forecasts') }}
    where metric = 'spend'

),

latest as (

    select
        *,
        row_number() over (
            partition by series_level, provider, model, feature, month
            order by as_of desc
        ) as run_rank
    from spend_forecasts

),

final as (

    select
        month as forecast_month,
        as_of,
        series_level,
        month_kind,
        feature,
        provider,
        model,
        p10,
        p50,
        p90
    from latest
    where run_rank = 1

)

select * from final
