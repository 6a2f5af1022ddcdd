"""Compile the per-request modules: our Python with mypyc, and the one C module.

The data plane's code runs once or more per request; compiled, its attribute reads and calls
between our own classes become C, which halves the CPU our code spends per request (see
bench/README.md). Everything else stays interpreted. The extensions are written next to the
sources (`src/vhostd/**.cpython-*.so`, never committed); Python imports them in preference to
the .py files, and without them vhostd runs the same code interpreted.

    .venv/bin/python scripts/build_native.py    # what `make native` runs; a no-op when current
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from vhostd.native import C_MODULES, NATIVE_MODULES, missing, stale  # noqa: E402 (after the path)


def main() -> int:
    if not stale() and not missing():
        return 0  # every extension is newer than its source
    from mypyc.build import mypycify
    from setuptools import Extension, setup

    modules = [name.replace(".", "/") + ".py" for name in NATIVE_MODULES]
    # Unlink, never overwrite: a running vhostd has the old files mapped, and writing into
    # them in place would crash it.
    for old in SRC.glob("vhostd/**/*.so"):
        old.unlink()
    os.chdir(SRC)  # module names come from the paths: vhostd/proxy/client.py → vhostd.proxy.client
    build_dir = SRC.parent / "build" / "native"
    c_extensions = [
        Extension(name, [name.replace(".", "/") + ".c"], extra_compile_args=["-O2"])
        for name in C_MODULES
    ]
    setup(
        name="vhostd-native",
        ext_modules=mypycify(
            modules, group_name="vhostd._native", opt_level="3", target_dir=str(build_dir)
        )
        + c_extensions,
        script_args=[
            "-q",
            "build_ext",
            "--inplace",
            "--force",  # the per-module shims never change: rebuilt, they get a fresh time
            "--build-temp",
            str(build_dir),
            "--build-lib",
            str(build_dir / "lib"),
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
