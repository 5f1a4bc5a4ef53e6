{#- Fails with one row per duplicated key: the combination of `columns` must be unique.
    (dbt_utils' unique_combination_of_columns cannot be installed offline.) -#}
{% test marts_unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as rows_with_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
