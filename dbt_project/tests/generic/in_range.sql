{#- Fails with one row per value of `column_name` outside its range: below `min_value` or above
    `max_value` (either bound may be left out). Bounds are inclusive unless `inclusive: false`
    (an FX rate is > 0, not >= 0). A null is not out of range: whether a column may be null is
    not_null's question; narrow the rows with dbt's `where` config where a value is legitimately
    unbounded for some rows. (dbt_expectations cannot be installed offline.) -#}
{% test in_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}

{%- if min_value is none and max_value is none -%}
    {{ exceptions.raise_compiler_error("in_range on " ~ column_name ~ ": give min_value, max_value or both") }}
{%- endif -%}
{%- set below = '<' if inclusive else '<=' -%}
{%- set above = '>' if inclusive else '>=' -%}

select {{ column_name }} as out_of_range_value
from {{ model }}
where {{ column_name }} is not null
    and (
        {%- if min_value is not none %}
        {{ column_name }} {{ below }} {{ min_value }}
        {%- endif %}
        {%- if min_value is not none and max_value is not none %}
        or
        {%- endif %}
        {%- if max_value is not none %}
        {{ column_name }} {{ above }} {{ max_value }}
        {%- endif %}
    )

{% endtest %}
