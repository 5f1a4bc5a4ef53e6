"""Import Great Expectations at a fraction of its usual cost.

``import great_expectations`` (1.24) takes 3.5-6 s of one core on the 2-core machines this
project is measured on: longer than DuckDB takes to read a million gateway records. Two
parts of that cost buy nothing for tokenbook's checkpoints:

- **scipy.stats and altair.** GX imports them at module level for expectations tokenbook
  never runs (KL divergence, KS tests) and for rendering charts. Here they are registered as
  deferred modules first: the real module loads on the first attribute anyone reads from it,
  so a caller that does use them gets the real thing, only later. A module someone already
  imported is left alone.
- **Python's cyclic garbage collector.** GX builds thousands of classes and pydantic schemas
  at import; each young-generation collection re-walks them. The collector is paused for the
  import, then everything the import built is moved out of its reach (``gc.freeze``): those
  objects live as long as the process, and interpreter shutdown no longer walks them either
  (about a second at exit).

``bench/ingest.py`` prints the import's cost in a fresh interpreter both ways.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import sys
import threading
import types

# imported by GX at module level, used only by expectations and renderers tokenbook never runs
DEFERRED = ("scipy.stats", "altair")

_import_lock = threading.Lock()
_load_lock = threading.RLock()


class _Deferred(types.ModuleType):
    """A module whose real import runs when one of its attributes is first read.

    The import machinery's own attributes (``__spec__``, ``__path__``, ...) are set from the
    real module's spec, so ``import x`` and ``from x import y`` of a deferred module do not
    trigger the load by themselves; reading any other attribute does.
    """

    def __getattr__(self, attr: str):
        with _load_lock:
            real = self.__dict__.get("_tb_real")
            if real is None:
                name = self.__name__
                if sys.modules.get(name) is self:
                    del sys.modules[name]
                real = importlib.import_module(name)
                # references to this proxy held by GX's modules now see the real contents
                self.__dict__.update(real.__dict__)
                self.__dict__["_tb_real"] = real
        return getattr(real, attr)


def _defer(name: str) -> None:
    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is None:
        return
    module = _Deferred(name)
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__file__ = spec.origin
    module.__package__ = spec.parent if spec.submodule_search_locations is None else name
    if spec.submodule_search_locations is not None:
        module.__path__ = list(spec.submodule_search_locations)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def import_gx() -> types.ModuleType:
    """``import great_expectations``, deferring what it does not need; safe from any thread."""
    with _import_lock:
        if "great_expectations.expectations" in sys.modules:
            import great_expectations  # waits if another thread is still importing it

            return great_expectations
        for name in DEFERRED:
            _defer(name)
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            import great_expectations
            import great_expectations.expectations  # noqa: F401
        finally:
            if was_enabled:
                gc.enable()
        gc.freeze()
        return great_expectations
