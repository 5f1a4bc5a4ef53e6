{#- Retry amplification: per feature x primary model x ISO week, attempts per logical request,
    the spend on retries and failed attempts, requests beyond the retry cap and what degraded
    days cost (grain, inputs and assumptions: _levers__models.yml). -#}
with

settings as (

    {{ tokenbook.settings_row(
        'levers_settings',
        {'default_retry_cap': 'default_retry_cap', 'degraded_multiple': 'degraded_multiple', 'degraded_min_requests': 'degraded_min_requests'}
    ) }}

),

caps as (

    select feature, retry_cap from {{ ref('levers_retry_caps') }}

),

requests as (

    -- one row per logical request (trace), attributed to its first attempt's feature, model
    -- and day
    select
        trace_id,
        feature,
        provider,
        model_family,
        request_date,
        attempts,
        failed_attempts,
        cost_usd,
        retry_cost_usd,
        failed_cost_usd
    from {{ ref('int_retry_requests') }}

),

daily as (

    select
        feature,
        provider,
        model_family,
        request_date,
        count(*) as requests,
        sum(attempts) as attempts,
        sum(cost_usd) as cost_usd
    from requests
    group by feature, provider, model_family, request_date

),

norms as (

    -- the feature x model's usual attempts per request over all its days
    select
        feature,
        provider,
        model_family,
        {{ tokenbook.marts_ratio('sum(attempts)', 'sum(requests)') }} as norm_attempts_per_request
    from daily
    group by feature, provider, model_family

),

classified_days as (

    select
        d.*,
        {{ tokenbook.marts_ratio('d.attempts', 'd.requests') }} as attempts_per_request,
        n.norm_attempts_per_request,
        d.requests >= s.degraded_min_requests
            and {{ tokenbook.marts_ratio('d.attempts', 'd.requests') }}
                >= s.degraded_multiple * n.norm_attempts_per_request as is_degraded
    from daily as d
    cross join settings as s
    inner join norms as n
        on d.feature = n.feature
        and d.provider = n.provider
        and d.model_family = n.model_family

),

normal_rate as (

    -- cost per request on the feature x model's normal days
    select
        feature,
        provider,
        model_family,
        {{ tokenbook.marts_money_ratio('sum(cost_usd)', 'sum(requests)') }} as normal_cost_per_request
    from classified_days
    where not is_degraded
    group by feature, provider, model_family

),

weekly_degraded as (

    select
        c.feature,
        c.provider,
        c.model_family,
        {{ tokenbook.week_start('c.request_date') }} as week_start,
        sum(case when c.is_degraded then 1 else 0 end) as degraded_days,
        sum(case when c.is_degraded then c.requests else 0 end) as degraded_requests,
        sum(case when c.is_degraded then c.cost_usd end) as degraded_cost_usd
    from classified_days as c
    group by c.feature, c.provider, c.model_family, {{ tokenbook.week_start('c.request_date') }}

),

worst_day as (

    select feature, provider, model_family, week_start, request_date as worst_degraded_date
    from (
        select
            *,
            {{ tokenbook.week_start('request_date') }} as week_start,
            row_number() over (
                partition by feature, provider, model_family, {{ tokenbook.week_start('request_date') }}
                order by attempts_per_request desc, request_date
            ) as day_rank
        from classified_days
        where is_degraded
    ) as ranked
    where day_rank = 1

),

weekly as (

    select
        r.feature,
        r.provider,
        r.model_family,
        {{ tokenbook.week_start('r.request_date') }} as week_start,
        count(*) as logical_requests,
        sum(r.attempts) as attempts,
        sum(r.failed_attempts) as failed_attempts,
        sum(r.cost_usd) as cost_usd,
        sum(r.retry_cost_usd) as retry_cost_usd,
        sum(r.failed_cost_usd) as failed_cost_usd,
        sum(case when r.attempts > coalesce(cp.retry_cap, s.default_retry_cap) then 1 else 0 end)
            as requests_beyond_cap,
        max(coalesce(cp.retry_cap, s.default_retry_cap)) as retry_cap
    from requests as r
    cross join settings as s
    left join caps as cp on r.feature = cp.feature
    group by r.feature, r.provider, r.model_family, {{ tokenbook.week_start('r.request_date') }}

),

final as (

    select
        w.feature,
        w.provider,
        w.model_family as model,
        w.week_start,
        {{ tokenbook.marts_count('w.logical_requests') }} as logical_requests,
        {{ tokenbook.marts_count('w.attempts') }} as attempts,
        {{ tokenbook.marts_count('w.failed_attempts') }} as failed_attempts,
        {{ tokenbook.marts_ratio('w.attempts', 'w.logical_requests') }} as attempts_per_request,
        {{ tokenbook.to_money('w.cost_usd') }} as cost_usd,
        {{ tokenbook.to_money('w.retry_cost_usd') }} as retry_cost_usd,
        {{ tokenbook.to_money('w.failed_cost_usd') }} as failed_attempt_cost_usd,
        {{ tokenbook.marts_ratio('w.retry_cost_usd', 'w.cost_usd') }} as retry_spend_share,
        {{ tokenbook.marts_ratio('w.failed_cost_usd', 'w.cost_usd') }} as failed_spend_share,
        {{ tokenbook.marts_count('w.retry_cap') }} as retry_cap,
        {{ tokenbook.marts_count('w.requests_beyond_cap') }} as requests_beyond_cap,
        {{ tokenbook.marts_count('coalesce(d.degraded_days, 0)') }} as degraded_days,
        wd.worst_degraded_date,
        {{ tokenbook.to_money('coalesce(d.degraded_cost_usd, 0)') }} as degraded_day_cost_usd,
        -- cost per request on the week's degraded days / on the feature x model's normal days
        {{ tokenbook.marts_ratio(
            tokenbook.marts_money_ratio('d.degraded_cost_usd', 'd.degraded_requests'),
            'nr.normal_cost_per_request') }} as degraded_cost_multiplier,
        -- what the degraded days cost beyond the same requests at the normal cost per request
        {{ tokenbook.to_money(
            'greatest(coalesce(d.degraded_cost_usd, 0)'
            ~ ' - coalesce(d.degraded_requests, 0) * coalesce(nr.normal_cost_per_request, 0), 0)') }}
            as degraded_extra_cost_usd
    from weekly as w
    left join weekly_degraded as d
        on w.feature = d.feature
        and w.provider = d.provider
        and w.model_family = d.model_family
        and w.week_start = d.week_start
    left join worst_day as wd
        on w.feature = wd.feature
        and w.provider = wd.provider
        and w.model_family = wd.model_family
        and w.week_start = wd.week_start
    left join normal_rate as nr
        on w.feature = nr.feature
        and w.provider = nr.provider
        and w.model_family = nr.model_family

)

select * from final
