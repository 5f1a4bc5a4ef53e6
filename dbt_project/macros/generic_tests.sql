{#- Generic data tests (no dbt_utils here: the package hub is unreachable). -#}

{#- No two rows share the same combination of `columns`. -#}
{% test unique_combination_of_columns(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as n
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{#- The same test under the name the marts' YAML uses (one body: the test above). -#}
{% test marts_unique_combination(model, columns) %}
    {{ test_unique_combination_of_columns(model, columns) }}
{% endtest %}

{#- Invariant of the calls fact: every call loaded in staging lands in the fact, and the fact
    holds no call that is not loaded (with `unique` on call_id: exactly once; nothing dropped,
    nothing invented). With the var `run_date` (a nightly run), calls whose loads are all dated
    after it belong to later runs and are not required yet. Returns the offending call ids. -#}
{% test priced_plus_unpriced_equals_staging(model) %}
    {%- set run_date = var('run_date', none) -%}
    with staged as (
        select distinct call_id
        from {{ ref('stg_gateway__calls') }}
        {%- if run_date %}
        where load_date <= {{ tokenbook.date_literal(run_date) }}
        {%- endif %}
    ),
    missing as (
        select call_id, 'loaded but not in the fact' as problem
        from staged
        where call_id not in (select call_id from {{ model }})
    ),
    unloaded as (
        select call_id, 'in the fact but not loaded' as problem
        from {{ model }}
        where call_id not in (select call_id from {{ ref('stg_gateway__calls') }})
    )
    select * from missing
    union all
    select * from unloaded
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
