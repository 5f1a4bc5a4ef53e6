{#- One row per retiring model (model_lifecycle seed) x feature that called it in the volume
    window: spend at risk when the model retires within `deprecation_horizon_days` of the
    as-of date (latest call_date), and whether the approved fallback passed the feature's eval
    (grain, inputs, assumptions: _economics__models.yml). -#}
with

settings as (

    {{ tokenbook.settings_row(
        'economics_settings',
        {'window_days': 'volume_window_days', 'horizon_days': 'deprecation_horizon_days'}
    ) }}

),

as_of as (

    select max(call_date) as as_of_date from {{ ref('fct_llm_calls') }}

),

retiring as (

    select
        lifecycle.*,
        as_of.as_of_date
    from {{ ref('model_lifecycle') }} as lifecycle
    cross join as_of
    cross join settings
    where lifecycle.retirement_date
        <= {{ tokenbook.marts_add_days('cast(settings.horizon_days as ' ~ dbt.type_int() ~ ')', 'as_of.as_of_date') }}

),

window_calls as (

    select
        calls.provider,
        coalesce(
            {{ tokenbook.regex_extract('lower(coalesce(calls.catalog_model, calls.model))', '^(.+?)-20[0-9]{2}-?[0-9]{2}-?[0-9]{2}$') }},
            lower(coalesce(calls.catalog_model, calls.model))) as model,
        coalesce(calls.feature, '(unattributed)') as feature,
        calls.effective_cost_usd
    from {{ ref('fct_llm_calls') }} as calls
    cross join as_of
    cross join settings
    where calls.call_date > {{ tokenbook.marts_add_days('-1 * cast(settings.window_days as ' ~ dbt.type_int() ~ ')', 'as_of.as_of_date') }}

),

usage as (

    select
        retiring.provider,
        retiring.model,
        retiring.retirement_date,
        retiring.as_of_date,
        retiring.fallback_provider,
        retiring.fallback_model,
        window_calls.feature,
        count(*) as calls,
        sum(coalesce(window_calls.effective_cost_usd, 0)) as effective_cost_usd
    from retiring
    inner join window_calls
        on retiring.provider = window_calls.provider
        and lower(retiring.model) = window_calls.model
    group by retiring.provider, retiring.model, retiring.retirement_date, retiring.as_of_date,
        retiring.fallback_provider, retiring.fallback_model, window_calls.feature

),

fallback_evals as (

    -- the latest passing eval of the fallback on the feature, on or before the as-of date
    -- (matched on the model family: an eval of a model judges it on every provider)
    select
        usage.provider,
        usage.model,
        usage.feature,
        max(evals.eval_date) as fallback_eval_date,
        max(evals.score) as fallback_eval_score
    from usage
    inner join {{ ref('stg_evals__results') }} as evals
        on usage.feature = evals.feature
        and evals.model_family = coalesce(
            {{ tokenbook.regex_extract('lower(usage.fallback_model)', '^(.+?)-20[0-9]{2}-?[0-9]{2}-?[0-9]{2}$') }},
            lower(usage.fallback_model))
        and evals.passed
        and evals.eval_date <= usage.as_of_date
    group by usage.provider, usage.model, usage.feature

),

final as (

    select
        cast(usage.provider as {{ tokenbook.type_text() }}) as provider,
        cast(usage.model as {{ tokenbook.type_text() }}) as model,
        cast(usage.feature as {{ tokenbook.type_text() }}) as feature,
        usage.as_of_date,
        usage.retirement_date,
        cast({{ dbt.datediff('usage.as_of_date', 'usage.retirement_date', 'day') }}
            as {{ dbt.type_bigint() }}) as days_to_retirement,
        {{ tokenbook.marts_count('usage.calls') }} as window_calls,
        {{ tokenbook.to_money('usage.effective_cost_usd') }} as window_effective_cost_usd,
        cast(usage.fallback_provider as {{ tokenbook.type_text() }}) as fallback_provider,
        cast(usage.fallback_model as {{ tokenbook.type_text() }}) as fallback_model,
        fallback_evals.fallback_eval_date is not null as fallback_has_passing_eval,
        fallback_evals.fallback_eval_date,
        cast(fallback_evals.fallback_eval_score as {{ tokenbook.type_double() }}) as fallback_eval_score,
        cast(case
            when usage.retirement_date < usage.as_of_date then 'retired: still called'
            when fallback_evals.fallback_eval_date is null then 'at risk: fallback not evaluated'
            else 'ready to migrate'
        end as {{ tokenbook.type_text() }}) as migration_status,
        cast('USD' as {{ tokenbook.type_text() }}) as currency
    from usage
    left join fallback_evals
        on usage.provider = fallback_evals.provider
        and usage.model = fallback_evals.model
        and usage.feature = fallback_evals.feature

)

select * from final
