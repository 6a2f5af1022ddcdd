"""`vhostd serve [--config FILE] [--workers N]`: run the proxy until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import dataclasses
import logging

from vhostd.cli.options import add_config_option, config_path
from vhostd.config.load import load_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the proxy")
    add_config_option(parser)
    parser.add_argument("--workers", type=int, help="worker processes (SO_REUSEPORT)")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")


def run(args: argparse.Namespace) -> int:
    from vhostd.runtime import serve

    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    path = config_path(args)
    config = load_config(path)
    if args.workers:
        config = dataclasses.replace(
            config, server=dataclasses.replace(config.server, workers=args.workers)
        )
    serve(config, path)
    return 0
