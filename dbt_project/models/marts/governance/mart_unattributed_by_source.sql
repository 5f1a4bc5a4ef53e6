{#- One row per ISO week x source_format x api_key_id x project_id x environment: spend with
    no feature or no customer segment, so a platform team finds the key, project or log
    source that sends untagged traffic (grain, assumptions: _governance__models.yml). -#}
with

calls as (

    select
        {{ tokenbook.week_start('call_date') }} as week_start,
        coalesce(source_format, '(unknown)') as source_format,
        coalesce(api_key_id, '(none)') as api_key_id,
        coalesce(project_id, '(none)') as project_id,
        coalesce(environment, '(none)') as environment,
        case when coalesce(feature, '(unattributed)') = '(unattributed)' then 1 else 0 end
            as lacks_feature,
        case when coalesce(customer_segment, '(unattributed)') = '(unattributed)' then 1 else 0 end
            as lacks_segment,
        coalesce(effective_cost_usd, 0) as effective_cost_usd
    from {{ ref('fct_llm_calls') }}

),

flagged as (

    select
        calls.*,
        case when lacks_feature = 1 or lacks_segment = 1 then 1 else 0 end as is_unattributed
    from calls

),

by_source as (

    select
        week_start,
        source_format,
        api_key_id,
        project_id,
        environment,
        count(*) as calls,
        sum(is_unattributed) as unattributed_calls,
        sum(lacks_feature) as calls_without_feature,
        sum(lacks_segment) as calls_without_segment,
        sum(effective_cost_usd) as effective_cost_usd,
        sum(case when is_unattributed = 1 then effective_cost_usd else 0 end)
            as unattributed_effective_cost_usd
    from flagged
    group by week_start, source_format, api_key_id, project_id, environment

),

week_totals as (

    select
        week_start,
        sum(unattributed_effective_cost_usd) as week_unattributed_cost_usd
    from by_source
    group by week_start

),

final as (

    select
        by_source.week_start,
        cast(by_source.source_format as {{ tokenbook.type_text() }}) as source_format,
        cast(by_source.api_key_id as {{ tokenbook.type_text() }}) as api_key_id,
        cast(by_source.project_id as {{ tokenbook.type_text() }}) as project_id,
        cast(by_source.environment as {{ tokenbook.type_text() }}) as environment,
        {{ marts_count('by_source.calls') }} as calls,
        {{ marts_count('by_source.unattributed_calls') }} as unattributed_calls,
        {{ marts_count('by_source.calls_without_feature') }} as calls_without_feature,
        {{ marts_count('by_source.calls_without_segment') }} as calls_without_segment,
        {{ tokenbook.to_money('by_source.effective_cost_usd') }} as effective_cost_usd,
        {{ tokenbook.to_money('by_source.unattributed_effective_cost_usd') }}
            as unattributed_effective_cost_usd,
        {{ marts_ratio('by_source.unattributed_effective_cost_usd', 'by_source.effective_cost_usd') }}
            as unattributed_share_of_source_spend,
        {{ marts_ratio('by_source.unattributed_effective_cost_usd', 'week_totals.week_unattributed_cost_usd') }}
            as share_of_week_unattributed_spend,
        cast('USD' as {{ tokenbook.type_text() }}) as currency
    from by_source
    inner join week_totals
        on by_source.week_start = week_totals.week_start

)

select * from final
