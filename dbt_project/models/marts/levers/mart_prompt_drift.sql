{#- Prompt drift: per feature x prompt template x ISO week, input tokens per call against the
    template's baseline weeks, the growth multiple and the monthly dollars the growth adds
    (grain, inputs and assumptions: _levers__models.yml). -#}
with

settings as (

    {{ tokenbook.settings_row(
        'levers_settings',
        {'baseline_weeks': 'drift_baseline_weeks', 'drift_threshold': 'drift_threshold', 'min_calls': 'drift_min_calls', 'days_per_month': 'days_per_month'},
        integers=['baseline_weeks']
    ) }}

),

prices as (

    select price_id, input_per_mtok from {{ ref('int_price_book') }}

),

calls as (

    select
        c.feature,
        c.prompt_template_id,
        c.call_week,
        c.call_date,
        c.input_tokens,
        p.input_per_mtok
    from {{ ref('fct_llm_calls') }} as c
    left join prices as p on c.price_id = p.price_id
    where c.prompt_template_id is not null

),

weekly as (

    select
        feature,
        prompt_template_id,
        call_week,
        count(*) as calls,
        count(distinct call_date) as active_days,
        sum(input_tokens) as input_tokens,
        -- input price per 1M tokens, weighted by the priced calls' input tokens
        {{ tokenbook.marts_ratio(
            'sum(case when input_per_mtok is not null then input_tokens * input_per_mtok end)',
            'sum(case when input_per_mtok is not null then input_tokens end)') }}
            as input_price_per_mtok
    from calls
    group by feature, prompt_template_id, call_week

),

numbered as (

    select
        *,
        row_number() over (
            partition by feature, prompt_template_id order by call_week
        ) as week_number,
        max(call_week) over () as latest_week
    from weekly

),

baseline as (

    select
        n.feature,
        n.prompt_template_id,
        max(n.call_week) as baseline_end_week,
        {{ tokenbook.marts_ratio('sum(n.input_tokens)', 'sum(n.calls)') }} as baseline_input_per_call,
        sum(n.calls) as baseline_calls
    from numbered as n
    cross join settings as s
    where n.week_number <= s.baseline_weeks
    group by n.feature, n.prompt_template_id

),

measured as (

    select
        n.feature,
        n.prompt_template_id,
        n.call_week,
        n.week_number,
        n.week_number <= s.baseline_weeks as is_baseline_week,
        n.call_week = n.latest_week as is_latest_week,
        {{ tokenbook.marts_count('n.calls') }} as calls,
        {{ tokenbook.marts_count('n.active_days') }} as active_days,
        {{ tokenbook.marts_count('n.input_tokens') }} as input_tokens,
        {{ tokenbook.marts_ratio('n.input_tokens', 'n.calls') }} as input_tokens_per_call,
        b.baseline_end_week,
        b.baseline_input_per_call,
        b.baseline_calls,
        n.input_price_per_mtok,
        s.min_calls,
        s.drift_threshold,
        s.days_per_month,
        n.calls * s.days_per_month / n.active_days as monthly_calls
    from numbered as n
    cross join settings as s
    inner join baseline as b
        on n.feature = b.feature
        and n.prompt_template_id = b.prompt_template_id

),

final as (

    select
        feature,
        prompt_template_id,
        call_week,
        week_number,
        is_baseline_week,
        is_latest_week,
        calls,
        active_days,
        input_tokens,
        input_tokens_per_call,
        baseline_end_week,
        baseline_input_per_call,
        {{ tokenbook.marts_ratio('input_tokens_per_call', 'baseline_input_per_call') }} as growth_multiple,
        -- extra input tokens per call x this week's calls per day x days per month
        (input_tokens_per_call - baseline_input_per_call) * monthly_calls as monthly_extra_input_tokens,
        {{ tokenbook.to_money('input_price_per_mtok') }} as input_price_per_mtok_usd,
        {{ tokenbook.to_money(
            'round((input_tokens_per_call - baseline_input_per_call) * monthly_calls'
            ~ ' * coalesce(input_price_per_mtok, 0) / 1000000, 9)') }} as monthly_added_cost_usd,
        not is_baseline_week
            and calls >= min_calls
            and baseline_calls >= min_calls
            and coalesce(input_tokens_per_call >= drift_threshold * baseline_input_per_call, false)
            as is_flagged
    from measured

)

select * from final
