{#- One row per source_format (native | litellm | otel) x ISO week (Monday): how much of the
    spend each log source delivers without a feature or without a customer segment.
    A call is unattributed when its feature or its segment is '(unattributed)' (or null);
    the shares are of effective cost. -#}

with calls as (

    select
        coalesce(source_format, '(unknown)') as source_format,
        {{ week_start('call_date') }} as week_start,
        case when coalesce(feature, '(unattributed)') = '(unattributed)' then 1 else 0 end
            as lacks_feature,
        case when coalesce(customer_segment, '(unattributed)') = '(unattributed)' then 1 else 0 end
            as lacks_segment,
        coalesce(list_cost_usd, 0) as list_cost_usd,
        coalesce(effective_cost_usd, 0) as effective_cost_usd
    from {{ ref('fct_llm_calls') }}

),

flagged as (

    select
        calls.*,
        case when lacks_feature = 1 or lacks_segment = 1 then 1 else 0 end as is_unattributed
    from calls

),

by_source_week as (

    select
        source_format,
        week_start,
        count(*) as calls,
        sum(is_unattributed) as unattributed_calls,
        sum(list_cost_usd) as list_cost_usd,
        sum(effective_cost_usd) as effective_cost_usd,
        sum(case when is_unattributed = 1 then list_cost_usd else 0 end)
            as unattributed_list_cost_usd,
        sum(case when is_unattributed = 1 then effective_cost_usd else 0 end)
            as unattributed_effective_cost_usd,
        sum(case when lacks_feature = 1 then effective_cost_usd else 0 end)
            as no_feature_effective_cost_usd,
        sum(case when lacks_segment = 1 then effective_cost_usd else 0 end)
            as no_segment_effective_cost_usd
    from flagged
    group by source_format, week_start

),

week_totals as (

    select
        week_start,
        sum(effective_cost_usd) as week_effective_cost_usd
    from by_source_week
    group by week_start

),

final as (

    select
        by_source_week.source_format,
        by_source_week.week_start,
        {{ marts_count('by_source_week.calls') }} as calls,
        {{ marts_count('by_source_week.unattributed_calls') }} as unattributed_calls,
        {{ to_money('by_source_week.list_cost_usd') }} as list_cost_usd,
        {{ to_money('by_source_week.effective_cost_usd') }} as effective_cost_usd,
        {{ to_money('by_source_week.unattributed_list_cost_usd') }} as unattributed_list_cost_usd,
        {{ to_money('by_source_week.unattributed_effective_cost_usd') }}
            as unattributed_effective_cost_usd,
        {{ to_money('by_source_week.no_feature_effective_cost_usd') }}
            as no_feature_effective_cost_usd,
        {{ to_money('by_source_week.no_segment_effective_cost_usd') }}
            as no_segment_effective_cost_usd,
        {{ marts_ratio('by_source_week.unattributed_calls', 'by_source_week.calls') }}
            as unattributed_call_share,
        {{ marts_ratio('by_source_week.unattributed_effective_cost_usd', 'by_source_week.effective_cost_usd') }}
            as unattributed_share_of_source_spend,
        {{ marts_ratio('by_source_week.effective_cost_usd', 'week_totals.week_effective_cost_usd') }}
            as source_share_of_week_spend,
        {{ marts_ratio('by_source_week.unattributed_effective_cost_usd', 'week_totals.week_effective_cost_usd') }}
            as unattributed_share_of_week_spend,
        cast('USD' as {{ type_text() }}) as currency
    from by_source_week
    inner join week_totals
        on by_source_week.week_start = week_totals.week_start

)

select * from final
