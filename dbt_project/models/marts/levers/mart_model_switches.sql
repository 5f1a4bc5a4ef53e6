{#- Eval before switch: each change of a feature's dominant model, whether a passing eval of the
    new model existed before it, and cost and quality before vs after (grain, inputs and
    assumptions: _levers__models.yml). -#}
{%- set earlier = "least(coalesce(prev_share.share, 0), case when d.prev2_week is null then coalesce(prev_share.share, 0) else coalesce(prev2_share.share, 0) end)" -%}
with

settings as (

    {{ tokenbook.settings_row(
        'levers_settings',
        {'window_days': 'switch_window_days', 'min_share_shift': 'switch_min_share_shift', 'max_quality_drop': 'max_quality_drop', 'days_per_month': 'days_per_month'},
        integers=['window_days']
    ) }}

),

features as (

    select feature, quality_bar from {{ ref('features') }}

),

calls as (

    select
        feature,
        call_date,
        call_week,
        provider,
        coalesce({{ tokenbook.catalog_family('catalog_model') }}, model)
            as model_family,
        is_priced,
        effective_cost_usd,
        quality_score
    from {{ ref('fct_llm_calls') }}
    where feature <> '(unattributed)'

),

daily as (

    select
        feature,
        call_date,
        call_week,
        provider,
        model_family,
        count(*) as calls
    from calls
    group by feature, call_date, call_week, provider, model_family

),

weekly_share as (

    select
        feature,
        call_week,
        provider,
        model_family,
        sum(calls) as calls,
        {{ tokenbook.marts_ratio('sum(calls)', 'sum(sum(calls)) over (partition by feature, call_week)') }}
            as share
    from daily
    group by feature, call_week, provider, model_family

),

weekly_dominant as (

    select
        feature,
        call_week,
        provider,
        model_family,
        share,
        lag(provider) over (partition by feature order by call_week) as prev_provider,
        lag(model_family) over (partition by feature order by call_week) as prev_model_family,
        lag(call_week) over (partition by feature order by call_week) as prev_week,
        lag(call_week, 2) over (partition by feature order by call_week) as prev2_week
    from (
        select
            *,
            row_number() over (
                partition by feature, call_week order by calls desc, provider, model_family
            ) as calls_rank
        from weekly_share
    ) as ranked
    where calls_rank = 1

),

switch_weeks as (

    -- the dominant model changed week over week and the new model's share jumped against the
    -- lower of its shares one and two weeks earlier (a switch late in a week leaves the week
    -- half switched, and the dominant model changes only the week after)
    select
        d.feature,
        d.call_week,
        d.prev_week,
        d.prev_provider as from_provider,
        d.prev_model_family as from_model,
        d.provider as to_provider,
        d.model_family as to_model,
        d.share as to_share,
        d.share - {{ earlier }} as share_shift
    from weekly_dominant as d
    cross join settings as s
    left join weekly_share as prev_share
        on d.feature = prev_share.feature
        and d.prev_week = prev_share.call_week
        and d.provider = prev_share.provider
        and d.model_family = prev_share.model_family
    left join weekly_share as prev2_share
        on d.feature = prev2_share.feature
        and d.prev2_week = prev2_share.call_week
        and d.provider = prev2_share.provider
        and d.model_family = prev2_share.model_family
    where d.prev_week is not null
        and (d.provider <> d.prev_provider or d.model_family <> d.prev_model_family)
        and d.share - {{ earlier }} >= s.min_share_shift

),

span_days as (

    -- each day of the two weeks around the change, with the new model's calls
    select
        w.feature,
        w.call_week,
        d.call_date,
        sum(d.calls) as day_calls,
        sum(case when d.provider = w.to_provider and d.model_family = w.to_model
                 then d.calls else 0 end) as day_new_calls
    from switch_weeks as w
    inner join daily as d
        on w.feature = d.feature
        and d.call_week >= w.prev_week
        and d.call_week <= w.call_week
    group by w.feature, w.call_week, d.call_date

),

change_points as (

    -- the switch day splits the span where the new model's share after minus before is largest
    select
        feature,
        call_week,
        call_date,
        coalesce({{ tokenbook.marts_ratio('span_new - new_before', 'span_calls - calls_before') }}, 0)
        - coalesce({{ tokenbook.marts_ratio('new_before', 'calls_before') }}, 0) as split_gain
    from (
        select
            *,
            coalesce(sum(day_calls) over (
                partition by feature, call_week order by call_date
                rows between unbounded preceding and 1 preceding), 0) as calls_before,
            coalesce(sum(day_new_calls) over (
                partition by feature, call_week order by call_date
                rows between unbounded preceding and 1 preceding), 0) as new_before,
            sum(day_calls) over (partition by feature, call_week) as span_calls,
            sum(day_new_calls) over (partition by feature, call_week) as span_new
        from span_days
    ) as cumulative

),

switches as (

    select
        w.*,
        c.call_date as switch_date
    from switch_weeks as w
    inner join (
        select
            *,
            row_number() over (
                partition by feature, call_week order by split_gain desc, call_date
            ) as gain_rank
        from change_points
    ) as c
        on w.feature = c.feature
        and w.call_week = c.call_week
        and c.gain_rank = 1

),

windows as (

    -- the feature's calls in the windows before and after each switch
    select
        s.feature,
        s.switch_date,
        case when c.call_date < s.switch_date then 'before' else 'after' end as side,
        count(*) as calls,
        sum(case when c.is_priced then 1 else 0 end) as priced_calls,
        sum(c.effective_cost_usd) as cost_usd,
        avg(c.quality_score) as mean_quality,
        sum(case when c.provider = s.to_provider and c.model_family = s.to_model
                 then c.effective_cost_usd end) as new_model_cost_usd
    from switches as s
    cross join settings as st
    inner join calls as c
        on s.feature = c.feature
        and c.call_date >= {{ tokenbook.marts_add_days('(0 - st.window_days)', 's.switch_date') }}
        and c.call_date < {{ tokenbook.marts_add_days('(st.window_days)', 's.switch_date') }}
    group by s.feature, s.switch_date, case when c.call_date < s.switch_date then 'before' else 'after' end

),

evals as (

    select
        e.feature,
        e.provider,
        e.model_family,
        e.eval_date,
        e.passed and e.score >= f.quality_bar as is_passing
    from {{ ref('stg_evals__results') }} as e
    inner join features as f on e.feature = f.feature

),

eval_status as (

    select
        s.feature,
        s.switch_date,
        max(case when e.is_passing and e.eval_date < s.switch_date then e.eval_date end)
            as last_passing_eval_before,
        min(case when e.eval_date >= s.switch_date then e.eval_date end) as first_eval_after,
        max(case when e.eval_date < s.switch_date then 1 else 0 end) as evaluated_before
    from switches as s
    inner join evals as e
        on s.feature = e.feature
        and s.to_provider = e.provider
        and s.to_model = e.model_family
    group by s.feature, s.switch_date

),

compared as (

    select
        s.feature,
        s.switch_date,
        s.call_week as switch_week,
        s.from_provider,
        s.from_model,
        s.to_provider,
        s.to_model,
        s.to_share as to_model_week_share,
        s.share_shift,
        es.last_passing_eval_before is not null as had_passing_eval,
        coalesce(es.evaluated_before, 0) = 1 as had_any_eval,
        es.last_passing_eval_before,
        es.first_eval_after,
        b.calls as calls_before,
        a.calls as calls_after,
        {{ tokenbook.marts_money_ratio('b.cost_usd', 'b.priced_calls') }} as cost_per_call_before_usd,
        {{ tokenbook.marts_money_ratio('a.cost_usd', 'a.priced_calls') }} as cost_per_call_after_usd,
        b.mean_quality as quality_before,
        a.mean_quality as quality_after,
        a.mean_quality - b.mean_quality as quality_change,
        f.quality_bar,
        st.max_quality_drop,
        {{ tokenbook.to_money('coalesce(a.new_model_cost_usd, 0) * st.days_per_month / st.window_days') }}
            as monthly_spend_on_new_model_usd,
        {{ tokenbook.to_money(
            '(coalesce(a.cost_usd, 0) - coalesce(b.cost_usd, 0)) * st.days_per_month / st.window_days') }}
            as monthly_cost_change_usd
    from switches as s
    cross join settings as st
    left join features as f on s.feature = f.feature
    left join eval_status as es on s.feature = es.feature and s.switch_date = es.switch_date
    left join windows as b
        on s.feature = b.feature and s.switch_date = b.switch_date and b.side = 'before'
    left join windows as a
        on s.feature = a.feature and s.switch_date = a.switch_date and a.side = 'after'

),

final as (

    select
        *,
        coalesce(quality_change < 0 - max_quality_drop, false) as is_quality_down,
        not had_passing_eval or coalesce(quality_change < 0 - max_quality_drop, false) as is_flagged,
        case
            when not had_passing_eval and coalesce(quality_change < 0 - max_quality_drop, false)
                then 'no passing eval before the switch; quality down'
            when not had_passing_eval then 'no passing eval before the switch'
            when coalesce(quality_change < 0 - max_quality_drop, false) then 'quality down'
        end as flag_reason
    from compared

)

select * from final
