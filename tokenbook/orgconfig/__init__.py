"""The organisation's own configuration (features, teams, budgets, agreements, ...): a folder the
user owns, validated, then loaded into ``raw.config_*`` tables the dbt models read.
See README "Your organisation"."""

from tokenbook.orgconfig.check import ConfigInvalid, Issue, OrgConfig, read_config
from tokenbook.orgconfig.spec import BY_NAME, FILES

__all__ = ["BY_NAME", "FILES", "ConfigInvalid", "Issue", "OrgConfig", "read_config"]
