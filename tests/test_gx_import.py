"""ingestion/gx_import.py: Great Expectations imported without scipy.stats and altair, which
still load, for real, the moment someone uses them.

Each check runs in a fresh interpreter: the test process has long imported everything."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "False"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_gx_imports_without_scipy_stats_and_altair_which_load_on_use() -> None:
    out = _run(
        """
        import gc, sys
        from ingestion.gx_import import import_gx
        gx = import_gx()
        assert gx.__name__ == "great_expectations" and gx.__version__
        import great_expectations.expectations as gxe
        assert gxe.ExpectColumnValuesToNotBeNull
        # deferred: their real code has not run
        print("stats loaded:", "scipy.stats._stats_py" in sys.modules)
        print("altair loaded:", "altair.vegalite" in sys.modules)
        print("gc enabled:", gc.isenabled())
        # ... and used, they are the real modules: through GX's own reference, and imported anew
        from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl
        print("entropy:", round(float(kl.stats.entropy([0.5, 0.5], [0.9, 0.1])), 6))
        import scipy.stats
        print("norm:", scipy.stats.norm.cdf(0.0))
        import altair as alt
        print("chart:", type(alt.Chart()).__name__, "altair.vegalite" in sys.modules)
        print("stats real:", type(sys.modules["scipy.stats"]).__name__)
        """
    )
    assert "stats loaded: False" in out
    assert "altair loaded: False" in out
    assert "gc enabled: True" in out
    assert "entropy: 0.510826" in out  # KL(0.5,0.5 || 0.9,0.1) = 0.5 ln(0.5/0.9) + 0.5 ln(5)
    assert "norm: 0.5" in out
    assert "chart: Chart True" in out
    assert "stats real: module" in out


def test_modules_already_imported_are_left_alone_and_threads_share_one_import() -> None:
    out = _run(
        """
        import sys, threading
        import scipy.stats
        real = sys.modules["scipy.stats"]
        from ingestion.gx_import import import_gx
        got = []
        threads = [threading.Thread(target=lambda: got.append(import_gx())) for _ in range(3)]
        for t in threads: t.start()
        for t in threads: t.join()
        print("one module:", len({id(m) for m in got}) == 1 and len(got) == 3)
        print("stats untouched:", sys.modules["scipy.stats"] is real)
        print("altair deferred:", type(sys.modules["altair"]).__name__)
        """
    )
    assert "one module: True" in out
    assert "stats untouched: True" in out
    assert "altair deferred: _Deferred" in out
