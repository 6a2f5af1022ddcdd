"""Which per-request modules run compiled (`make native`) and whether they are current.

Two kinds: our type-checked Python built by mypyc, and small extensions written in C (the
head scanner, the chunk scanner, the direct socket write), which have no Python twin:
without them every head and chunked body goes through httptools and every write through
the transport.

Python prefers an extension module to the .py beside it, so a compiled module older than its
source would silently run old code: `stale()` names those, and `vhostd serve` and the test
suite refuse to go on with them.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

# Compiled by scripts/build_native.py, in this order.
NATIVE_MODULES = (
    "vhostd.proxy.response",
    "vhostd.proxy.client",
    "vhostd.proxy.upstream",
    "vhostd.proxy.request",
    "vhostd.proxy.headers",
    "vhostd.proxy.outlet",
    "vhostd.proxy.context",
    "vhostd.routing.table",
    "vhostd.config.model",
)
# Written in C, built beside them.
C_MODULES = ("vhostd.proxy._headscan", "vhostd.proxy._chunks", "vhostd.proxy._sendnow")
ALL_MODULES = NATIVE_MODULES + C_MODULES


def compiled() -> list[str]:
    """The native modules that were imported from a compiled extension."""
    names = []
    for name in ALL_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a C module not built
            continue
        if not (module.__file__ or "").endswith(".py"):
            names.append(name)
    return names


def _sources() -> list[Path]:
    root = Path(__file__).resolve().parent.parent
    return [root / (name.replace(".", os.sep) + ".py") for name in NATIVE_MODULES] + [
        root / (name.replace(".", os.sep) + ".c") for name in C_MODULES
    ]


def _built(source: Path) -> list[Path]:
    return list(source.parent.glob(source.stem + ".*.so"))


def stale() -> list[str]:
    """Source files edited after their compiled extension was built."""
    return [
        str(source)
        for source in _sources()
        if any(built.stat().st_mtime < source.stat().st_mtime for built in _built(source))
    ]


def missing() -> list[str]:
    """Source files without a compiled extension."""
    return [str(source) for source in _sources() if not _built(source)]
