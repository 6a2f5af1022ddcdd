"""Options every subcommand shares (DESIGN: each takes --config FILE)."""

from __future__ import annotations

import argparse

from vhostd.config.load import default_config_path


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="main config file (default: ./vhostd.toml when present)"
    )


def config_path(args: argparse.Namespace) -> str | None:
    """The --config given, else ./vhostd.toml when present, else None (the embedded default)."""
    return getattr(args, "config", None) or default_config_path()
