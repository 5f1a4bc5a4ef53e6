{#- Cross-database helpers. DuckDB and BigQuery differ on these; every model uses the macro,
    never the dialect's own spelling. -#}

{#- dbt-duckdb's safe_cast is a plain CAST (raises on bad values); use try_cast. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}

{#- Money: DECIMAL(38,9) on DuckDB, NUMERIC (38 digits, 9 decimals) on BigQuery. -#}
{% macro type_money() -%}
    {{ return(adapter.dispatch('type_money', 'tokenbook')()) }}
{%- endmacro %}
{% macro default__type_money() -%} decimal(38, 9) {%- endmacro %}
{% macro bigquery__type_money() -%} numeric {%- endmacro %}

{% macro to_money(expr) -%}
    cast({{ expr }} as {{ tokenbook.type_money() }})
{%- endmacro %}

{#- tokens x (USD per million tokens) -> USD, exact to 1e-9 (rounded once).
    DuckDB turns decimal / integer into DOUBLE, so multiply by a decimal 1e-6 instead. -#}
{% macro per_million(expr) -%}
    {{ return(adapter.dispatch('per_million', 'tokenbook')(expr)) }}
{%- endmacro %}
{% macro default__per_million(expr) -%}
    cast(({{ expr }}) * cast(0.000001 as decimal(7, 6)) as decimal(38, 9))
{%- endmacro %}
{% macro bigquery__per_million(expr) -%}
    cast(({{ expr }}) * numeric '0.000001' as numeric)
{%- endmacro %}

{#- A percentage as a multiplier, kept decimal: 20 -> 0.80 of the price. -#}
{% macro pct_remaining(pct_expr) -%}
    {{ return(adapter.dispatch('pct_remaining', 'tokenbook')(pct_expr)) }}
{%- endmacro %}
{% macro default__pct_remaining(pct_expr) -%}
    cast((100 - cast({{ pct_expr }} as decimal(38, 9))) * cast(0.01 as decimal(3, 2)) as decimal(38, 9))
{%- endmacro %}
{% macro bigquery__pct_remaining(pct_expr) -%}
    cast((100 - cast({{ pct_expr }} as numeric)) * numeric '0.01' as numeric)
{%- endmacro %}

{#- ISO week start (Monday) on both warehouses. DuckDB's week already starts Monday;
    BigQuery's WEEK starts Sunday, ISOWEEK starts Monday. -#}
{% macro week_start(date_expr) -%}
    {{ return(adapter.dispatch('week_start', 'tokenbook')(date_expr)) }}
{%- endmacro %}
{% macro default__week_start(date_expr) -%}
    cast(date_trunc('week', cast({{ date_expr }} as date)) as date)
{%- endmacro %}
{% macro bigquery__week_start(date_expr) -%}
    date_trunc(cast({{ date_expr }} as date), isoweek)
{%- endmacro %}

{% macro month_start(date_expr) -%}
    {{ return(adapter.dispatch('month_start', 'tokenbook')(date_expr)) }}
{%- endmacro %}
{% macro default__month_start(date_expr) -%}
    cast(date_trunc('month', cast({{ date_expr }} as date)) as date)
{%- endmacro %}
{% macro bigquery__month_start(date_expr) -%}
    date_trunc(cast({{ date_expr }} as date), month)
{%- endmacro %}

{#- A date n days earlier, as a DATE on both warehouses. -#}
{% macro date_sub_days(date_expr, n) -%}
    {{ return(adapter.dispatch('date_sub_days', 'tokenbook')(date_expr, n)) }}
{%- endmacro %}
{% macro default__date_sub_days(date_expr, n) -%}
    cast(cast({{ date_expr }} as date) - {{ n }} as date)
{%- endmacro %}
{% macro bigquery__date_sub_days(date_expr, n) -%}
    date_sub(cast({{ date_expr }} as date), interval {{ n }} day)
{%- endmacro %}

{#- Anchored regular-expression replace. Both dialects use RE2 syntax; DuckDB replaces only
    the first match without the 'g' option, BigQuery every match, so patterns here are
    anchored (^...$) and match once. -#}
{% macro regex_replace(expr, pattern, replacement='') -%}
    {{ return(adapter.dispatch('regex_replace', 'tokenbook')(expr, pattern, replacement)) }}
{%- endmacro %}
{% macro default__regex_replace(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}
{% macro bigquery__regex_replace(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, r'{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{% macro regex_matches(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_matches', 'tokenbook')(expr, pattern)) }}
{%- endmacro %}
{% macro default__regex_matches(expr, pattern) -%}
    regexp_matches({{ expr }}, '{{ pattern }}')
{%- endmacro %}
{% macro bigquery__regex_matches(expr, pattern) -%}
    regexp_contains({{ expr }}, r'{{ pattern }}')
{%- endmacro %}

{#- Text type for literals and casts. -#}
{% macro type_text() -%}
    {{ return(adapter.dispatch('type_text', 'tokenbook')()) }}
{%- endmacro %}
{% macro default__type_text() -%} varchar {%- endmacro %}
{% macro bigquery__type_text() -%} string {%- endmacro %}

{#- First capture group of an RE2 pattern, or null when it does not match. -#}
{% macro regex_extract(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_extract', 'tokenbook')(expr, pattern)) }}
{%- endmacro %}
{% macro default__regex_extract(expr, pattern) -%}
    nullif(regexp_extract({{ expr }}, '{{ pattern }}', 1), '')
{%- endmacro %}
{% macro bigquery__regex_extract(expr, pattern) -%}
    nullif(regexp_extract({{ expr }}, r'{{ pattern }}'), '')
{%- endmacro %}

{#- 64-bit float (dbt.type_float() is 32-bit FLOAT on DuckDB). Never for money. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'tokenbook')()) }}
{%- endmacro %}
{% macro default__type_double() -%} double {%- endmacro %}
{% macro bigquery__type_double() -%} float64 {%- endmacro %}

{#- An intermediate product kept exact before the final rounding to money: DECIMAL(38,18) on
    DuckDB; BigQuery NUMERIC arithmetic already rounds to 9 decimals per step. -#}
{% macro wide_decimal(expr) -%}
    {{ return(adapter.dispatch('wide_decimal', 'tokenbook')(expr)) }}
{%- endmacro %}
{% macro default__wide_decimal(expr) -%}
    cast({{ expr }} as decimal(38, 18))
{%- endmacro %}
{% macro bigquery__wide_decimal(expr) -%}
    {{ expr }}
{%- endmacro %}

{#- An amount in one currency times a rate (units of another per unit), as money: exact
    product, rounded once to 1e-9 (half away from zero on both warehouses). -#}
{% macro fx_convert(amount, rate) -%}
    {{ return(adapter.dispatch('fx_convert', 'tokenbook')(amount, rate)) }}
{%- endmacro %}
{% macro default__fx_convert(amount, rate) -%}
    cast(cast({{ amount }} as decimal(38, 9)) * cast({{ rate }} as decimal(18, 9)) as decimal(38, 9))
{%- endmacro %}
{% macro bigquery__fx_convert(amount, rate) -%}
    cast({{ amount }} * {{ rate }} as numeric)
{%- endmacro %}

{#- A scalar of a JSON document (a JSON or text column) at a JSONPath such as '$.region', as
    text; null when absent. -#}
{% macro json_text(expr, path) -%}
    {{ return(adapter.dispatch('json_text', 'tokenbook')(expr, path)) }}
{%- endmacro %}
{% macro default__json_text(expr, path) -%}
    json_extract_string({{ expr }}, '{{ path }}')
{%- endmacro %}
{% macro bigquery__json_text(expr, path) -%}
    json_value({{ expr }}, '{{ path }}')
{%- endmacro %}
