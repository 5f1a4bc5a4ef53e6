{#- Generic data tests (no dbt_utils here: the package hub is unreachable). -#}

{#- No two rows share the same combination of `columns`. -#}
{% test unique_combination_of_columns(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as n
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{#- Invariant of the calls fact: priced calls + unpriced calls = distinct calls loaded in
    staging (every loaded call lands exactly once; nothing dropped, nothing priced twice). -#}
{% test priced_plus_unpriced_equals_staging(model) %}
    with fact as (
        select
            sum(case when is_priced then 1 else 0 end) as priced_calls,
            sum(case when not is_priced then 1 else 0 end) as unpriced_calls
        from {{ model }}
    ),
    staged as (
        select count(distinct call_id) as loaded_calls
        from {{ ref('stg_gateway__calls') }}
    )
    select *
    from fact
    cross join staged
    where coalesce(fact.priced_calls, 0) + coalesce(fact.unpriced_calls, 0) != staged.loaded_calls
{% endtest %}

{#- Effective-dated rows of one key must not overlap ([valid_from, valid_to), null = open). -#}
{% test no_overlapping_periods(model, key_columns, from_column='valid_from', to_column='valid_to') %}
    select a.*
    from {{ model }} as a
    inner join {{ model }} as b
        on {% for c in key_columns %}a.{{ c }} = b.{{ c }} and {% endfor %}
        a.{{ from_column }} < b.{{ from_column }}
        and (a.{{ to_column }} is null or a.{{ to_column }} > b.{{ from_column }})
{% endtest %}
