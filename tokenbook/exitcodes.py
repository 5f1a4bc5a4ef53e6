"""Exit codes of every ``tokenbook`` command, one meaning each (documented in the README).

Scripts and the DAG tell a refused input from a failed quality check from a bug by the code alone.
"""

from __future__ import annotations

OK = 0
#: The input was refused and nothing was changed: an empty or unreadable delivery, a file of the
#: wrong format or vendor, a load that would shrink a loaded partition without ``--replace``,
#: a warehouse file locked by another process, a failed dbt build.
INPUT_REFUSED = 1
#: The command line was wrong: an unknown flag, a bad date, a missing argument (typer/click's own).
USAGE = 2
#: The data-quality gate failed: an expectation failed, or a suite that should have run has no result.
#: (``tokenbook transform``: only dbt data tests failed, the models were built.)
QUALITY_FAILED = 3
#: The organisation's configuration folder is invalid (``tokenbook config check`` says where),
#: or the BigQuery warehouse has no credentials.
CONFIG_INVALID = 4
#: Interrupted (Ctrl-C / SIGINT), also while DuckDB runs a statement: what was being loaded is
#: rolled back, what earlier commands loaded is unchanged (128 + SIGINT, as shells report it).
INTERRUPTED = 130
#: An unexpected error: one line on the terminal, the traceback in the log file (or with --debug).
INTERNAL = 70
