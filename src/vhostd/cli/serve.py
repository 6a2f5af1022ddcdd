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


def _report_native() -> None:
    from vhostd import native

    log = logging.getLogger("vhostd")
    outdated = native.stale()
    if outdated:
        log.warning(
            "compiled modules are older than their sources, so old code runs: %s; "
            "run `make native`",
            ", ".join(outdated),
        )
    compiled = native.compiled()
    log.info(
        "per-request modules: %s",
        f"compiled ({len(compiled)} of {len(native.ALL_MODULES)})"
        if compiled
        else "interpreted",
    )


def run(args: argparse.Namespace) -> int:
    from vhostd.runtime import serve

    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _report_native()
    path = config_path(args)
    config = load_config(path)
    if args.workers:
        config = dataclasses.replace(
            config, server=dataclasses.replace(config.server, workers=args.workers)
        )
    serve(config, path)
    return 0
