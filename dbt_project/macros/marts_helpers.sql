{#- Helpers for the cost marts (owner: marts). Same SQL on DuckDB and BigQuery; weeks, months
    and money use the foundation's macros in cross_db.sql (week_start, month_start, to_money).

    marts_count(expr)            cast to a 64-bit integer: BIGINT / INT64.
    marts_float_type()           64-bit float (dbt.type_float() is 32-bit on DuckDB).
    marts_ratio(num, den)        num / den as a 64-bit float share; null when den is 0 or null.
    marts_money_ratio(num, den)  money per unit (cost per call, per outcome) in the money type;
                                 null when den is 0 or null. BigQuery divides NUMERIC exactly;
                                 DuckDB divides decimals in double precision, so there the
                                 result is exact to about 15 significant digits, then rounded
                                 to 9 decimals.
    marts_add_days(n, expr), marts_add_months(n, expr)
                                 date arithmetic returning a DATE on both warehouses.
-#}

{% macro marts_count(expr) -%}
    cast({{ expr }} as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro marts_float_type() -%}
    {{ return(tokenbook.tb_type('float')) }}
{%- endmacro %}

{% macro marts_ratio(num, den) -%}
    cast({{ num }} as {{ marts_float_type() }}) / nullif(cast({{ den }} as {{ marts_float_type() }}), 0)
{%- endmacro %}

{% macro marts_money_ratio(num, den) -%}
    cast(({{ num }}) / nullif({{ den }}, 0) as {{ type_money() }})
{%- endmacro %}

{% macro marts_add_days(n, expr) -%}
    cast({{ dbt.dateadd('day', n, expr) }} as date)
{%- endmacro %}

{% macro marts_add_months(n, expr) -%}
    cast({{ dbt.dateadd('month', n, expr) }} as date)
{%- endmacro %}
