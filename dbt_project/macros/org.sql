{#- The organisation's rows win over the public seed's rows for the same key: every org row, then
    the public rows whose key no org row has. Keys compare case-insensitively (a company's CSV
    writing `OpenAI` / `GPT-4o` still overrides the public `openai` / `gpt-4o`). Both CTEs must
    have the same columns in the same order. -#}
{% macro org_over_public(org_cte, public_cte, keys) -%}
    select * from {{ org_cte }}
    union all
    select {{ public_cte }}.*
    from {{ public_cte }}
    left join {{ org_cte }}
        on {% for key in keys -%}
        lower({{ public_cte }}.{{ key }}) = lower({{ org_cte }}.{{ key }})
        {%- if not loop.last %}
        and {% endif -%}
        {%- endfor %}
    where {{ org_cte }}.{{ keys[-1] }} is null
{%- endmacro %}
