"""`vhostd deploy REPO`: clone → route → login → start → answer, in one command."""

from __future__ import annotations

import argparse

from vhostd.cli.options import add_config_option, config_path
from vhostd.config.load import load_config


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `deploy`."""
    parser = subparsers.add_parser(
        "deploy",
        help="deploy a git repository as a routed project",
        description="Clone (or update) REPO into the projects directory, detect how it runs "
        "(compose file, Dockerfile, Vagrantfile), route it at its hosts, create the login "
        "when asked, start it and wait until it answers through vhostd. Deploying again "
        "pulls, rebuilds and restarts. A failure rolls back what the deploy added.",
    )
    parser.add_argument("repo", metavar="REPO", help="git repository URL or path")
    parser.add_argument("--name", help="project name (default: the repository's name)")
    parser.add_argument("--branch", help="branch to deploy (default: the repository's default)")
    parser.add_argument("--host", action="append", default=[], metavar="HOST", dest="hosts",
                        help="a host to route (repeatable; default: NAME.<deploy domain>)")
    parser.add_argument("--auth", metavar="USER",
                        help="protect the hosts with a login for USER (password printed once)")
    parser.add_argument("--service", help="compose: the web service (default: guessed)")
    parser.add_argument("--port", type=int, help="the port the project listens on inside")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="how long to wait for the site to answer (default: 120)")
    parser.add_argument("--no-wait", action="store_true",
                        help="do not wait for the site to answer through vhostd")
    add_config_option(parser)


def run(args: argparse.Namespace) -> int:
    # imported here: the Docker client behind it costs every other subcommand ~12 MiB
    from vhostd.deploy.project import DeployRequest, deploy_project

    config = load_config(config_path(args))
    request = DeployRequest(
        repo=args.repo, name=args.name, branch=args.branch, hosts=tuple(args.hosts),
        auth_user=args.auth, service=args.service, port=args.port,
        wait=not args.no_wait, timeout=args.timeout,
    )
    result = deploy_project(config, request)
    record = result.record
    answered = f" (answered {result.status})" if result.status is not None else ""
    print(f"deployed {record.name} ({record.kind}, {record.commit[:12]}){answered}")
    if result.password is not None:
        print(f"login: {record.auth_user}  password: {result.password}  (shown once)")
    print(record.url)
    return 0
