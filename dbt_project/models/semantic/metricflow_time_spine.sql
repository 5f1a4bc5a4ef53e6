{#- One row per day, 2015-01-01 .. 2042-05-18 (10,000 days): the time spine MetricFlow joins
    metric_time to (cumulative metrics, filling empty periods). Written without hub packages:
    four digit tables cross-joined, offsets added with the cross-database dateadd. -#}
{{ config(materialized='table') }}

with

digits as (

    select 0 as d union all select 1 union all select 2 union all select 3 union all select 4
    union all select 5 union all select 6 union all select 7 union all select 8 union all select 9

),

day_offsets as (

    select thousands.d * 1000 + hundreds.d * 100 + tens.d * 10 + units.d as day_offset
    from digits as thousands
    cross join digits as hundreds
    cross join digits as tens
    cross join digits as units

),

final as (

    select cast({{ dbt.dateadd('day', 'day_offset', "cast('2015-01-01' as date)") }} as date) as date_day
    from day_offsets

)

select * from final
