{#- One row per load date: raw records loaded, and how many were superseded by the same
    request_id in a later load (or a later line of the same load), i.e. what staging's
    dedupe drops. rows_kept = rows_loaded - rows_superseded. -#}
with

calls as (

    select call_id, load_date, source_line from {{ ref('stg_gateway__calls') }}

),

ranked as (

    select
        load_date,
        row_number() over (
            partition by call_id order by load_date desc, source_line desc
        ) as load_rank
    from calls

),

final as (

    select
        load_date,
        count(*) as rows_loaded,
        sum(case when load_rank > 1 then 1 else 0 end) as rows_superseded,
        sum(case when load_rank = 1 then 1 else 0 end) as rows_kept
    from ranked
    group by load_date

)

select * from final
