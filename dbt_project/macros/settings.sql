{#- One row of named settings from a key/value settings seed (columns setting, value):
    settings_row('levers_settings', {'window_days': 'switch_window_days', ...}, integers=[...])
    gives `select max(case when setting = 'switch_window_days' then value end) as window_days,
    ... from <seed>`, casting the aliases in `integers` to an integer type. -#}
{% macro settings_row(seed_name, settings, integers=[]) -%}
    select
    {%- for alias, setting in settings.items() %}
        {%- set picked = "max(case when setting = '" ~ setting ~ "' then value end)" %}
        {% if alias in integers -%}
            cast({{ picked }} as {{ dbt.type_int() }})
        {%- else -%}
            {{ picked }}
        {%- endif %} as {{ alias }}{{ "," if not loop.last }}
    {%- endfor %}
    from {{ ref(seed_name) }}
{%- endmacro %}
