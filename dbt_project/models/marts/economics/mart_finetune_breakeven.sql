{#- One row per fine-tune candidate (feature x candidate, finetune_candidates seed): the
    break-even volume, months to amortise the one-off cost at the current and forecast volume,
    and a verdict (grain, inputs, assumptions: _economics__models.yml). A candidate that has
    not passed the feature's eval is never 'go'. -#}
{{ config(tags=['after_forecast']) }}
with

settings as (

    {{ tokenbook.settings_row(
        'economics_settings',
        {'window_days': 'volume_window_days', 'days_per_month': 'days_per_month', 'max_payback_months': 'max_payback_months'}
    ) }}

),

as_of as (

    select max(call_date) as as_of_date from {{ ref('fct_llm_calls') }}

),

window_calls as (

    -- priced calls of the volume window: what the feature pays per token today
    select
        calls.feature,
        calls.input_tokens,
        calls.output_tokens,
        calls.effective_cost_usd
    from {{ ref('fct_llm_calls') }} as calls
    cross join as_of
    cross join settings
    where calls.is_priced
        and calls.call_date > {{ tokenbook.marts_add_days('-1 * cast(settings.window_days as ' ~ dbt.type_int() ~ ')', 'as_of.as_of_date') }}

),

feature_volume as (

    select
        window_calls.feature,
        sum(window_calls.input_tokens) as input_tokens,
        sum(window_calls.output_tokens) as output_tokens,
        sum(window_calls.effective_cost_usd) as effective_cost_usd
    from window_calls
    group by window_calls.feature

),

latest_forecast as (

    select max(as_of) as as_of from {{ ref('int_economics_forecasts') }}

),

next_month_tokens as (

    -- p50 of the feature's token forecast for the first month after the forecast's as-of month
    select
        forecasts.feature,
        min(forecasts.month) as forecast_month,
        max(forecasts.p50) as forecast_tokens_p50
    from {{ ref('int_economics_forecasts') }} as forecasts
    inner join latest_forecast
        on forecasts.as_of = latest_forecast.as_of
    where forecasts.series_level = 'feature'
        and forecasts.metric = 'tokens'
        and forecasts.month = {{ tokenbook.marts_add_months(1, tokenbook.month_start('latest_forecast.as_of')) }}
    group by forecasts.feature

),

candidates as (

    select * from {{ ref('finetune_candidates') }}

),

unit_economics as (

    select
        candidates.*,
        settings.max_payback_months,
        cast(coalesce(feature_volume.input_tokens, 0) + coalesce(feature_volume.output_tokens, 0)
            as {{ tokenbook.type_double() }}) * settings.days_per_month / settings.window_days
            as current_tokens_per_month,
        cast(next_month_tokens.forecast_tokens_p50 as {{ tokenbook.type_double() }})
            as forecast_tokens_per_month,
        next_month_tokens.forecast_month,
        cast(feature_volume.effective_cost_usd as {{ tokenbook.type_double() }}) * 1000000
            / nullif(cast(feature_volume.input_tokens + feature_volume.output_tokens as {{ tokenbook.type_double() }}), 0)
            as current_cost_per_mtok,
        cast(feature_volume.input_tokens as {{ tokenbook.type_double() }})
            / nullif(cast(feature_volume.input_tokens + feature_volume.output_tokens as {{ tokenbook.type_double() }}), 0)
            as input_share,
        cast(candidates.labour_cost_per_month_usd + candidates.hosting_cost_per_month_usd
            as {{ tokenbook.type_double() }}) as fixed_cost_per_month
    from candidates
    cross join settings
    left join feature_volume
        on candidates.feature = feature_volume.feature
    left join next_month_tokens
        on candidates.feature = next_month_tokens.feature

),

savings as (

    select
        unit_economics.*,
        -- per million of today's tokens: the input shrinks by prompt_shrink_pct, the output
        -- is unchanged
        input_share * (1 - prompt_shrink_pct / 100) * cast(ft_input_per_mtok as {{ tokenbook.type_double() }})
            + (1 - input_share) * cast(ft_output_per_mtok as {{ tokenbook.type_double() }})
            as finetuned_cost_per_mtok
    from unit_economics

),

break_even as (

    select
        savings.*,
        current_cost_per_mtok - finetuned_cost_per_mtok as saving_per_mtok,
        current_tokens_per_month / 1000000 * (current_cost_per_mtok - finetuned_cost_per_mtok)
            - fixed_cost_per_month as net_saving_per_month_current,
        forecast_tokens_per_month / 1000000 * (current_cost_per_mtok - finetuned_cost_per_mtok)
            - fixed_cost_per_month as net_saving_per_month_forecast
    from savings

),

amortised as (

    select
        break_even.*,
        case when saving_per_mtok > 0
            then fixed_cost_per_month / saving_per_mtok * 1000000 end as break_even_tokens_per_month,
        case when net_saving_per_month_current > 0
            then cast(training_cost_usd as {{ tokenbook.type_double() }}) / net_saving_per_month_current
        end as months_to_amortise_current,
        case when net_saving_per_month_forecast > 0
            then cast(training_cost_usd as {{ tokenbook.type_double() }}) / net_saving_per_month_forecast
        end as months_to_amortise_forecast
    from break_even

),

judged as (

    select
        amortised.*,
        coalesce(months_to_amortise_current <= max_payback_months, false) as pays_back_current,
        coalesce(months_to_amortise_forecast <= max_payback_months, false) as pays_back_forecast
    from amortised

),

verdicts as (

    select
        judged.*,
        case
            when saving_per_mtok is null then 'wait'
            when saving_per_mtok <= 0 then 'no-go'
            when not passed_eval and (pays_back_current or pays_back_forecast) then 'wait'
            when not passed_eval then 'no-go'
            when pays_back_current then 'go'
            when pays_back_forecast then 'wait'
            else 'no-go'
        end as verdict,
        case
            when saving_per_mtok is null then 'no priced traffic on the feature in the window'
            when saving_per_mtok <= 0 then 'a fine-tuned token costs as much as or more than a token today'
            when not passed_eval and (pays_back_current or pays_back_forecast)
                then 'pays back, but has not passed the eval of the feature'
            when not passed_eval then 'has not passed the eval and does not pay back in time'
            when pays_back_current then 'passed the eval and pays back at the current volume'
            when pays_back_forecast then 'pays back only at the forecast volume'
            else 'does not pay back within max_payback_months'
        end as verdict_reason
    from judged

),

final as (

    select
        cast(candidate_id as {{ tokenbook.type_text() }}) as candidate_id,
        cast(feature as {{ tokenbook.type_text() }}) as feature,
        cast(ft_provider as {{ tokenbook.type_text() }}) as ft_provider,
        cast(ft_model as {{ tokenbook.type_text() }}) as ft_model,
        passed_eval,
        {{ tokenbook.to_money('training_cost_usd') }} as training_cost_usd,
        {{ tokenbook.to_money('fixed_cost_per_month') }} as fixed_cost_per_month_usd,
        {{ tokenbook.to_money('current_cost_per_mtok') }} as current_cost_per_mtok_usd,
        {{ tokenbook.to_money('finetuned_cost_per_mtok') }} as finetuned_cost_per_mtok_usd,
        {{ tokenbook.to_money('saving_per_mtok') }} as saving_per_mtok_usd,
        cast(round(break_even_tokens_per_month) as {{ dbt.type_bigint() }}) as break_even_tokens_per_month,
        cast(round(current_tokens_per_month) as {{ dbt.type_bigint() }}) as current_tokens_per_month,
        cast(round(forecast_tokens_per_month) as {{ dbt.type_bigint() }}) as forecast_tokens_per_month,
        forecast_month,
        {{ tokenbook.to_money('net_saving_per_month_current') }} as net_saving_per_month_current_usd,
        {{ tokenbook.to_money('net_saving_per_month_forecast') }} as net_saving_per_month_forecast_usd,
        cast(months_to_amortise_current as {{ tokenbook.type_double() }}) as months_to_amortise_current,
        cast(months_to_amortise_forecast as {{ tokenbook.type_double() }}) as months_to_amortise_forecast,
        cast(verdict as {{ tokenbook.type_text() }}) as verdict,
        cast(verdict_reason as {{ tokenbook.type_text() }}) as verdict_reason,
        cast('USD' as {{ tokenbook.type_text() }}) as currency
    from verdicts

)

select * from final
