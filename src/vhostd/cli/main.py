"""`vhostd` command line: one module per subcommand under vhostd.cli.

Each module exposes `add_parser(subparsers)` and `run(args) -> int`. VhostdError is caught
here and printed without a traceback (exit 1); usage errors exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

from vhostd.errors import VhostdError

# Listed in help order; a module not written yet is simply not offered.
SUBCOMMANDS = ("serve", "check", "routes", "auth", "deploy", "undeploy", "projects")


def _modules() -> list[ModuleType]:
    found = []
    for name in SUBCOMMANDS:
        qualified = f"vhostd.cli.{name}"
        if importlib.util.find_spec(qualified) is not None:
            found.append(importlib.import_module(qualified))
    return found


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(prog="vhostd", description="One port, every project.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _modules():
        before = set(subparsers.choices)
        module.add_parser(subparsers)
        for name in set(subparsers.choices) - before:
            subparsers.choices[name].set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the subcommand, turn VhostdError into a message and exit 1."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except VhostdError as error:
        print(f"vhostd: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
