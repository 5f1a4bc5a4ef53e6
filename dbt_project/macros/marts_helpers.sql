{#- Helpers for the cost marts (owner: marts). Same SQL on DuckDB and BigQuery; weeks, months
    and money use the foundation's macros in cross_db.sql (week_start, month_start, to_money).

    marts_count(expr)            cast to a 64-bit integer: BIGINT / INT64.
    marts_ratio(num, den)        num / den as a 64-bit float share; null when den is 0 or null.
    marts_money_ratio(num, den)  money per unit (cost per call, per outcome) in the money type;
                                 null when den is 0 or null. BigQuery divides NUMERIC exactly;
                                 DuckDB divides decimals in double precision, so there the
                                 result is exact to about 15 significant digits, then rounded
                                 to 9 decimals.
    marts_add_days(n, expr), marts_add_months(n, expr)
                                 date arithmetic returning a DATE on both warehouses.
    catalog_family(expr)         a catalogue model without its date suffix
                                 ('claude-sonnet-4-5-20250929' -> 'claude-sonnet-4-5',
                                 'gpt-4o-2024-08-06' -> 'gpt-4o'), else the model itself: the
                                 family the levers (retries, routing, model switches) group by.
                                 Unlike billing.sql's model_family it keeps the catalogue's
                                 spelling (no provider, region or version rewriting).
-#}

{% macro catalog_family(expr) -%}
    coalesce({{ tokenbook.regex_extract(expr, '^(.+?)-20[0-9]{2}-?[0-9]{2}-?[0-9]{2}$') }}, {{ expr }})
{%- endmacro %}

{% macro marts_count(expr) -%}
    cast({{ expr }} as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro marts_ratio(num, den) -%}
    cast({{ num }} as {{ tokenbook.type_double() }}) / nullif(cast({{ den }} as {{ tokenbook.type_double() }}), 0)
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
