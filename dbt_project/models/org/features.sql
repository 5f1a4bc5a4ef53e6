{#- One row per feature of the organisation's features.csv, with the cost centre of its owner
    team (teams.csv) and its monthly budget (budgets.csv). Empty when features are not
    configured; a null budget means none is configured for the feature. -#}
with

features as (

    select * from {{ source('config', 'config_features') }}

),

teams as (

    select team, cost_centre from {{ ref('teams') }}

),

budgets as (

    select feature, monthly_budget_usd from {{ source('config', 'config_budgets') }}

),

final as (

    select
        features.feature,
        features.unit_of_work,
        features.outcome_rule,
        features.owner_team,
        teams.cost_centre,
        features.budget_per_outcome_usd,
        budgets.monthly_budget_usd,
        features.quality_bar,
        features.value_per_outcome_usd,
        features.launched_on
    from features
    left join teams
        on features.owner_team = teams.team
    left join budgets
        on features.feature = budgets.feature

)

select * from final
