{#- One row per provider x model with a retirement date: the vendors' published dates (seed
    model_retirements_public, each with its URL) and the notices the organisation received
    (model_retirements.csv), which win for the same provider x model (compared
    case-insensitively, macro org_over_public). -#}
with

org as (

    select provider, model, retirement_date, announced_on, fallback_provider, fallback_model,
        source_note
    from {{ source('config', 'config_model_retirements') }}

),

public as (

    select provider, model, retirement_date, announced_on, fallback_provider, fallback_model,
        source_note
    from {{ ref('model_retirements_public') }}

),

final as (

    {{ org_over_public('org', 'public', ['provider', 'model']) }}

)

select * from final
