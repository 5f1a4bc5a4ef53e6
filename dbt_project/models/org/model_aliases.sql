{#- One row per model alias: the organisation's own (model_aliases.csv: deployment names,
    fine-tune aliases) first, then the public aliases shipped in the seed model_aliases_public.
    An org alias replaces a public one with the same provider and raw model (compared
    case-insensitively, macro org_over_public). -#}
with

org as (

    select provider, raw_model, match_type, catalog_provider, catalog_model, note
    from {{ source('config', 'config_model_aliases') }}

),

public as (

    select provider, raw_model, match_type, catalog_provider, catalog_model, note
    from {{ ref('model_aliases_public') }}

),

final as (

    {{ org_over_public('org', 'public', ['provider', 'raw_model']) }}

)

select * from final
