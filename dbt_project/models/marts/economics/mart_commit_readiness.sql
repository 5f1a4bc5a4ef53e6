{#- One row per provider and its dominant model (most spend over the last complete months):
    consumption of the last `commit_history_months` complete calendar months, its stability,
    a recommended monthly commitment and its saving at the offered discount, ready / not ready
    with the reason, and the self-hosting signal (grain, inputs, assumptions:
    _economics__models.yml). -#}
{{ config(tags=['after_forecast']) }}
with

settings as (

    {{ tokenbook.settings_row(
        'economics_settings',
        {'history_months': 'commit_history_months', 'max_cv': 'commit_max_cv', 'self_hosting_threshold_tokens': 'self_hosting_threshold_tokens'},
        integers=['history_months']
    ) }}

),

bounds as (

    select min(call_date) as first_date, max(call_date) as as_of_date
    from {{ ref('fct_llm_calls') }}

),

calls_by_family as (

    -- price-book keys of one model family (dated versions) count as one model
    select
        provider,
        coalesce(
            {{ tokenbook.regex_extract('lower(coalesce(catalog_model, model))', '^(.+?)-20[0-9]{2}-?[0-9]{2}-?[0-9]{2}$') }},
            lower(coalesce(catalog_model, model))) as model,
        call_month,
        effective_cost_usd,
        input_tokens,
        output_tokens
    from {{ ref('fct_llm_calls') }}

),

monthly as (

    select
        provider,
        model,
        call_month,
        sum(coalesce(effective_cost_usd, 0)) as effective_cost_usd,
        sum(input_tokens + output_tokens) as tokens
    from calls_by_family
    group by provider, model, call_month

),

complete_months as (

    -- calendar months the data covers from their first to their last day, latest first
    select
        call_month,
        row_number() over (order by call_month desc) as months_back
    from (select distinct call_month from monthly) as months
    cross join bounds
    where call_month >= bounds.first_date
        and {{ tokenbook.marts_add_months(1, 'call_month') }} <= {{ tokenbook.marts_add_days(1, 'bounds.as_of_date') }}

),

history as (

    select complete_months.call_month
    from complete_months
    cross join settings
    where complete_months.months_back <= settings.history_months

),

model_history as (

    select monthly.*
    from monthly
    inner join history
        on monthly.call_month = history.call_month

),

dominant as (

    select provider, model, effective_cost_usd as history_cost_usd, provider_history_cost_usd
    from (
        select
            provider,
            model,
            sum(effective_cost_usd) as effective_cost_usd,
            sum(sum(effective_cost_usd)) over (partition by provider) as provider_history_cost_usd,
            row_number() over (
                partition by provider order by sum(effective_cost_usd) desc, model
            ) as spend_rank
        from model_history
        group by provider, model
    ) as ranked
    where spend_rank = 1 and provider_history_cost_usd > 0

),

dominant_months as (

    -- every history month, with 0 when the model had no calls that month
    select
        dominant.provider,
        dominant.model,
        history.call_month,
        coalesce(model_history.effective_cost_usd, 0) as effective_cost_usd,
        coalesce(model_history.tokens, 0) as tokens
    from dominant
    cross join history
    left join model_history
        on dominant.provider = model_history.provider
        and dominant.model = model_history.model
        and history.call_month = model_history.call_month

),

stability as (

    select
        provider,
        model,
        count(*) as complete_months,
        min(call_month) as first_month,
        max(call_month) as last_month,
        avg(cast(effective_cost_usd as {{ tokenbook.type_double() }})) as mean_monthly_cost,
        stddev_pop(cast(effective_cost_usd as {{ tokenbook.type_double() }})) as stddev_monthly_cost,
        min(effective_cost_usd) as min_monthly_cost_usd,
        max(case when call_month = last_history_month then effective_cost_usd end)
            as last_month_cost_usd,
        max(case when call_month = last_history_month then tokens end) as last_month_tokens
    from dominant_months
    cross join (select max(call_month) as last_history_month from history) as last_history
    group by provider, model

),

latest_forecast as (

    select max(as_of) as as_of from {{ ref('int_economics_forecasts') }}

),

forecast_next_month as (

    -- summed over the price-book keys of the family (a sum of p10s is below the p10 of the
    -- sum for series that move together: conservative)
    select
        forecasts.provider,
        coalesce(
            {{ tokenbook.regex_extract('lower(forecasts.model)', '^(.+?)-20[0-9]{2}-?[0-9]{2}-?[0-9]{2}$') }},
            lower(forecasts.model)) as model,
        max(forecasts.month) as forecast_month,
        sum(forecasts.p10) as forecast_p10_usd,
        sum(forecasts.p50) as forecast_p50_usd
    from {{ ref('int_economics_forecasts') }} as forecasts
    inner join latest_forecast
        on forecasts.as_of = latest_forecast.as_of
    where forecasts.series_level = 'provider_model'
        and forecasts.metric = 'spend'
        and forecasts.month = {{ tokenbook.marts_add_months(1, tokenbook.month_start('latest_forecast.as_of')) }}
    group by forecasts.provider, coalesce(
            {{ tokenbook.regex_extract('lower(forecasts.model)', '^(.+?)-20[0-9]{2}-?[0-9]{2}-?[0-9]{2}$') }},
            lower(forecasts.model))

),

offers as (

    -- an offer on the model beats an offer on any model of the provider
    select
        dominant.provider,
        dominant.model,
        offers.offer_id,
        offers.discount_pct,
        offers.term_months,
        row_number() over (
            partition by dominant.provider
            order by case when offers.model = dominant.model then 0 else 1 end, offers.discount_pct desc
        ) as offer_rank
    from dominant
    inner join {{ ref('commitment_offers') }} as offers
        on dominant.provider = offers.provider
        and (offers.model = dominant.model or offers.model = '*')

),

assembled as (

    select
        dominant.provider,
        dominant.model,
        dominant.history_cost_usd,
        dominant.provider_history_cost_usd,
        stability.complete_months,
        stability.first_month,
        stability.last_month,
        stability.mean_monthly_cost,
        stability.stddev_monthly_cost / nullif(stability.mean_monthly_cost, 0) as coefficient_of_variation,
        stability.min_monthly_cost_usd,
        stability.last_month_cost_usd,
        stability.last_month_tokens,
        forecast_next_month.forecast_month,
        forecast_next_month.forecast_p10_usd,
        forecast_next_month.forecast_p50_usd,
        case
            when forecast_next_month.forecast_p10_usd is null then stability.min_monthly_cost_usd
            when forecast_next_month.forecast_p10_usd < stability.min_monthly_cost_usd
                then forecast_next_month.forecast_p10_usd
            else stability.min_monthly_cost_usd
        end as recommended_commit_usd,
        case
            when forecast_next_month.forecast_p10_usd is null then 'min of history months (no forecast)'
            when forecast_next_month.forecast_p10_usd < stability.min_monthly_cost_usd
                then 'forecast p10'
            else 'min of history months (caps the forecast p10)'
        end as commit_basis,
        offers.offer_id,
        offers.discount_pct,
        offers.term_months,
        settings.history_months,
        settings.max_cv,
        settings.self_hosting_threshold_tokens
    from dominant
    cross join settings
    inner join stability
        on dominant.provider = stability.provider
        and dominant.model = stability.model
    left join forecast_next_month
        on dominant.provider = forecast_next_month.provider
        and dominant.model = forecast_next_month.model
    left join offers
        on dominant.provider = offers.provider
        and offers.offer_rank = 1

),

judged as (

    select
        assembled.*,
        {{ tokenbook.marts_count('available.months') }} as complete_months_available,
        case
            when available.months < history_months
                then 'too little history: '
                    || cast(available.months as {{ tokenbook.type_text() }})
                    || ' of ' || cast(history_months as {{ tokenbook.type_text() }})
                    || ' complete months'
            when coefficient_of_variation is null or coefficient_of_variation > max_cv
                then 'unstable: coefficient of variation above commit_max_cv'
            when offer_id is null then 'no offer'
        end as not_ready_reason
    from assembled
    cross join (select count(*) as months from complete_months) as available

),

final as (

    select
        cast(provider as {{ tokenbook.type_text() }}) as provider,
        cast(model as {{ tokenbook.type_text() }}) as dominant_model,
        {{ tokenbook.to_money('provider_history_cost_usd') }} as provider_history_cost_usd,
        {{ tokenbook.to_money('history_cost_usd') }} as history_cost_usd,
        complete_months_available,
        first_month as history_first_month,
        last_month as history_last_month,
        {{ tokenbook.to_money('mean_monthly_cost') }} as mean_monthly_cost_usd,
        cast(coefficient_of_variation as {{ tokenbook.type_double() }}) as coefficient_of_variation,
        {{ tokenbook.to_money('min_monthly_cost_usd') }} as min_monthly_cost_usd,
        {{ tokenbook.to_money('last_month_cost_usd') }} as last_month_cost_usd,
        forecast_month,
        {{ tokenbook.to_money('forecast_p10_usd') }} as forecast_p10_usd,
        {{ tokenbook.to_money('forecast_p50_usd') }} as forecast_p50_usd,
        {{ tokenbook.to_money('recommended_commit_usd') }} as recommended_commit_usd,
        cast(commit_basis as {{ tokenbook.type_text() }}) as commit_basis,
        cast(offer_id as {{ tokenbook.type_text() }}) as offer_id,
        {{ tokenbook.to_money('discount_pct') }} as discount_pct,
        {{ tokenbook.to_money('recommended_commit_usd * discount_pct / 100') }}
            as saving_per_month_usd,
        {{ tokenbook.to_money('recommended_commit_usd * discount_pct / 100 * term_months') }}
            as saving_over_term_usd,
        cast(case when not_ready_reason is null then 'ready' else 'not ready' end
            as {{ tokenbook.type_text() }}) as readiness,
        cast(not_ready_reason as {{ tokenbook.type_text() }}) as not_ready_reason,
        {{ tokenbook.marts_count('last_month_tokens') }} as last_month_tokens,
        {{ tokenbook.marts_count('self_hosting_threshold_tokens') }} as self_hosting_threshold_tokens,
        coalesce(last_month_tokens >= self_hosting_threshold_tokens, false) as self_hosting_signal,
        cast('USD' as {{ tokenbook.type_text() }}) as currency
    from judged

)

select * from final
