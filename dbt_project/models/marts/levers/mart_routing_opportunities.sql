{#- Model routing: per feature x request_class, the cheapest model that passes the feature's
    quality bar and what the feature's current tokens would cost on it (grain, inputs and
    assumptions: _levers__models.yml). -#}
{%- set half = "cast(0.5 as " ~ tokenbook.type_money() ~ ")" -%}
with

settings as (

    {{ tokenbook.settings_row(
        'levers_settings',
        {'window_days': 'routing_window_days', 'min_quality_calls': 'min_quality_calls', 'max_quality_drop': 'max_quality_drop', 'days_per_month': 'days_per_month'},
        integers=['window_days']
    ) }}

),

as_of as (

    select max(call_date) as as_of_date from {{ ref('fct_llm_calls') }}

),

window_bounds as (

    select
        as_of.as_of_date,
        {{ tokenbook.marts_add_days('(1 - settings.window_days)', 'as_of.as_of_date') }} as window_start,
        settings.*
    from as_of
    cross join settings

),

features as (

    select feature, quality_bar from {{ ref('features') }}

),

tiers as (

    select lower(provider) as provider, lower(model) as model_family, capability_tier
    from {{ ref('levers_model_tiers') }}

),

window_calls as (

    select
        c.feature,
        coalesce(c.request_class, '(none)') as request_class,
        c.provider,
        {{ tokenbook.catalog_family('c.catalog_model') }}
            as model_family,
        c.trace_id,
        c.is_priced,
        c.is_batch,
        c.uncached_input_tokens,
        c.cache_read_input_tokens,
        c.cache_write_input_tokens,
        c.output_tokens,
        c.quality_score,
        c.list_cost_usd,
        c.effective_cost_usd
    from {{ ref('fct_llm_calls') }} as c
    cross join window_bounds as w
    where c.call_date >= w.window_start
        and c.call_date <= w.as_of_date

),

current_usage as (

    -- what the feature x class does now: volume, spend and the priced tokens to re-price
    select
        feature,
        request_class,
        {{ tokenbook.marts_count('count(*)') }} as calls,
        {{ tokenbook.marts_count('count(distinct trace_id)') }} as logical_requests,
        {{ tokenbook.to_money('coalesce(sum(list_cost_usd), 0)') }} as list_cost_usd,
        {{ tokenbook.to_money('coalesce(sum(effective_cost_usd), 0)') }} as effective_cost_usd,
        {%- for kind in ['uncached_input', 'cache_read_input', 'cache_write_input', 'output'] %}
        sum(case when is_priced and not is_batch then {{ kind }}_tokens else 0 end) as std_{{ kind }}_tokens,
        sum(case when is_priced and is_batch then {{ kind }}_tokens else 0 end) as batch_{{ kind }}_tokens,
        {%- endfor %}
        avg(quality_score) as mean_quality
    from window_calls
    group by feature, request_class

),

model_spend as (

    select
        feature,
        request_class,
        provider,
        model_family,
        coalesce(sum(list_cost_usd), 0) as list_cost_usd
    from window_calls
    where is_priced
    group by feature, request_class, provider, model_family

),

top_model as (

    select feature, request_class, provider, model_family
    from (
        select
            *,
            row_number() over (
                partition by feature, request_class
                order by list_cost_usd desc, provider, model_family
            ) as spend_rank
        from model_spend
    ) as ranked
    where spend_rank = 1

),

feature_quality as (

    select feature, avg(quality_score) as mean_quality
    from window_calls
    group by feature

),

observed_quality as (

    -- each model's own quality on the feature in the window (final attempts carry the score)
    select
        feature,
        provider,
        model_family,
        count(quality_score) as scored_calls,
        avg(quality_score) as mean_quality
    from window_calls
    group by feature, provider, model_family

),

latest_evals as (

    -- the latest eval of each feature x model up to the as-of date (a later fail overrides an
    -- earlier pass)
    select *
    from (
        select
            e.*,
            row_number() over (
                partition by e.feature, e.provider, e.model_family
                order by e.eval_date desc, e.score desc, e.eval_name
            ) as recency
        from {{ ref('stg_evals__results') }} as e
        cross join window_bounds as w
        where e.eval_date <= w.as_of_date
    ) as ranked
    where recency = 1

),

passing_models as (

    -- passed its eval AND scored at least the feature's published bar, and the logs do not
    -- contradict it: where the model has enough scored calls on the feature, its mean quality is
    -- not more than max_quality_drop below the feature's mean
    select
        e.feature,
        e.provider,
        e.model,
        e.model_family,
        e.score as eval_score,
        e.eval_date
    from latest_evals as e
    inner join features as f on e.feature = f.feature
    left join observed_quality as q
        on e.feature = q.feature
        and e.provider = q.provider
        and e.model_family = q.model_family
    left join feature_quality as fq on e.feature = fq.feature
    cross join window_bounds as w
    where e.passed
        and e.score >= f.quality_bar
        and (
            q.scored_calls is null
            or q.scored_calls < w.min_quality_calls
            or q.mean_quality >= fq.mean_quality - w.max_quality_drop
        )

),

prices_as_of as (

    -- list prices in force on the as-of date; a price the book lacks falls back as pricing does
    select
        p.provider,
        p.model,
        p.input_per_mtok as std_input,
        coalesce(p.cache_read_per_mtok, p.input_per_mtok) as std_cache_read,
        coalesce(p.cache_write_5m_per_mtok, p.input_per_mtok) as std_cache_write,
        p.output_per_mtok as std_output,
        coalesce(p.batch_input_per_mtok, {{ tokenbook.to_money('p.input_per_mtok * ' ~ half) }}) as batch_input,
        coalesce(p.batch_cache_read_per_mtok, {{ tokenbook.to_money('coalesce(p.cache_read_per_mtok, p.input_per_mtok) * ' ~ half) }}) as batch_cache_read,
        coalesce(p.batch_cache_write_per_mtok, {{ tokenbook.to_money('coalesce(p.cache_write_5m_per_mtok, p.input_per_mtok) * ' ~ half) }}) as batch_cache_write,
        coalesce(p.batch_output_per_mtok, {{ tokenbook.to_money('p.output_per_mtok * ' ~ half) }}) as batch_output
    from {{ ref('int_price_book') }} as p
    cross join window_bounds as w
    where p.valid_from <= w.as_of_date
        and (p.valid_to is null or w.as_of_date < p.valid_to)
        and p.input_per_mtok is not null
        and p.output_per_mtok is not null

),

repriced as (

    -- the feature x class's observed priced tokens at each passing model's list prices
    select
        u.feature,
        u.request_class,
        m.provider as candidate_provider,
        m.model as candidate_model,
        m.model_family as candidate_family,
        m.eval_score,
        m.eval_date,
        {{ tokenbook.per_million(
            'u.std_uncached_input_tokens * p.std_input'
            ~ ' + u.std_cache_read_input_tokens * p.std_cache_read'
            ~ ' + u.std_cache_write_input_tokens * p.std_cache_write'
            ~ ' + u.std_output_tokens * p.std_output'
            ~ ' + u.batch_uncached_input_tokens * p.batch_input'
            ~ ' + u.batch_cache_read_input_tokens * p.batch_cache_read'
            ~ ' + u.batch_cache_write_input_tokens * p.batch_cache_write'
            ~ ' + u.batch_output_tokens * p.batch_output') }} as candidate_list_cost_usd
    from current_usage as u
    inner join passing_models as m on u.feature = m.feature
    inner join prices_as_of as p on m.provider = p.provider and m.model = p.model

),

cheapest as (

    select *
    from (
        select
            *,
            row_number() over (
                partition by feature, request_class
                order by candidate_list_cost_usd, candidate_provider, candidate_model
            ) as cost_rank
        from repriced
    ) as ranked
    where cost_rank = 1

),

reflex as (

    -- spend on frontier (tier 3) models where the cheapest passing model is a lower tier
    select
        s.feature,
        s.request_class,
        sum(s.list_cost_usd) as reflex_list_cost_usd
    from model_spend as s
    inner join tiers as t on s.provider = t.provider and s.model_family = t.model_family
    inner join cheapest as c on s.feature = c.feature and s.request_class = c.request_class
    inner join tiers as ct
        on c.candidate_provider = ct.provider and c.candidate_family = ct.model_family
    where t.capability_tier = 3
        and ct.capability_tier < 3
    group by s.feature, s.request_class

),

final as (

    select
        u.feature,
        u.request_class,
        w.as_of_date,
        w.window_start,
        {{ tokenbook.marts_count('w.window_days') }} as window_days,
        u.calls,
        u.logical_requests,
        u.list_cost_usd,
        u.effective_cost_usd,
        {{ tokenbook.to_money('u.list_cost_usd * w.days_per_month / w.window_days') }} as monthly_list_cost_usd,
        t.provider as current_top_provider,
        t.model_family as current_top_model,
        tp.feature is not null as current_top_model_passes,
        u.mean_quality,
        f.quality_bar,
        c.candidate_provider as cheapest_passing_provider,
        c.candidate_model as cheapest_passing_model,
        c.eval_score as cheapest_passing_eval_score,
        c.eval_date as cheapest_passing_eval_date,
        c.candidate_list_cost_usd,
        {{ tokenbook.to_money(
            'greatest(u.list_cost_usd - coalesce(c.candidate_list_cost_usd, u.list_cost_usd), 0)'
            ~ ' * w.days_per_month / w.window_days') }} as monthly_saving_usd,
        {{ tokenbook.to_money('coalesce(r.reflex_list_cost_usd, 0)') }} as reflex_list_cost_usd,
        coalesce({{ tokenbook.marts_ratio('r.reflex_list_cost_usd', 'u.list_cost_usd') }}, 0)
            as reflex_spend_share,
        c.candidate_model is not null
            and c.candidate_list_cost_usd < u.list_cost_usd as has_opportunity
    from current_usage as u
    cross join window_bounds as w
    left join features as f on u.feature = f.feature
    left join top_model as t on u.feature = t.feature and u.request_class = t.request_class
    left join passing_models as tp
        on t.feature = tp.feature
        and t.provider = tp.provider
        and t.model_family = tp.model_family
    left join cheapest as c on u.feature = c.feature and u.request_class = c.request_class
    left join reflex as r on u.feature = r.feature and u.request_class = r.request_class

)

select * from final
