"""`vhostd undeploy NAME [--purge]`: stop a deployed project, remove its routes and login."""

from __future__ import annotations

import argparse

from vhostd.cli.options import add_config_option, config_path
from vhostd.config.load import load_config


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `undeploy`."""
    parser = subparsers.add_parser(
        "undeploy",
        help="stop a deployed project and remove its routes and login",
        description="Stop NAME and remove its routes and credentials. The checkout and the "
        "volumes are kept unless --purge.",
    )
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--purge", action="store_true",
                        help="also remove the checkout, volumes and built images")
    add_config_option(parser)


def run(args: argparse.Namespace) -> int:
    # imported here: the Docker client behind it costs every other subcommand ~12 MiB
    from vhostd.deploy.project import undeploy_project

    config = load_config(config_path(args))
    record = undeploy_project(config, args.name, purge=args.purge)
    kept = "" if args.purge else f" (checkout kept in {record.checkout})"
    print(f"undeployed {record.name}{kept}")
    return 0
