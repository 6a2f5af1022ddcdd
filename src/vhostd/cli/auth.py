"""`vhostd auth add|rm|list`: manage the htpasswd file of a site or a host.

Files live in the config's htpasswd_dir, one per target; the running server picks up every
change by itself (the file provider watches the directory), so no restart is needed.
"""

from __future__ import annotations

import argparse
import sys

from vhostd.auth import store
from vhostd.auth.hashes import DEFAULT_BCRYPT_COST
from vhostd.errors import VhostdError


def _add_config_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # SUPPRESS on the leaves: an option given before the action is not reset by the leaf.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="main config file (default: ./vhostd.toml when present)",
    )
    parser.add_argument(
        "--htpasswd-dir",
        metavar="DIR",
        default=default,
        help="use this directory instead of the config's htpasswd_dir",
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `auth` and its actions."""
    parser = subparsers.add_parser(
        "auth",
        help="manage basic-auth users of a site or a host",
        description="Manage the htpasswd file of a site name or a host (takes effect live).",
    )
    _add_config_options(parser, suppress=False)
    actions = parser.add_subparsers(dest="auth_action", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        help="add a user or change their password (bcrypt)",
        description="Add USER to TARGET's htpasswd file. Without --password-stdin a strong "
        "password is generated and printed once on stdout.",
    )
    add.add_argument("target", metavar="TARGET", help="a site name or a host")
    add.add_argument("user", metavar="USER")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    add.add_argument(
        "--cost",
        type=int,
        default=DEFAULT_BCRYPT_COST,
        choices=range(4, 18),
        metavar="N",
        help=f"bcrypt cost, 4-17 (default {DEFAULT_BCRYPT_COST})",
    )
    _add_config_options(add, suppress=True)

    remove = actions.add_parser("rm", help="remove a user", description="Remove USER.")
    remove.add_argument("target", metavar="TARGET", help="a site name or a host")
    remove.add_argument("user", metavar="USER")
    _add_config_options(remove, suppress=True)

    listing = actions.add_parser(
        "list", help="list users", description="List the users who can log in to TARGET."
    )
    listing.add_argument("target", metavar="TARGET", help="a site name or a host")
    _add_config_options(listing, suppress=True)


def htpasswd_dir_for(args: argparse.Namespace) -> str:
    """--htpasswd-dir, else the config's htpasswd_dir (absolute, from its directory)."""
    explicit = getattr(args, "htpasswd_dir", None)
    if explicit:
        return str(explicit)
    from vhostd.cli.options import config_path
    from vhostd.config.load import load_config

    return load_config(config_path(args)).files.htpasswd_dir


def _read_password_stdin() -> str:
    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise VhostdError("no password on standard input")
    return password


def run(args: argparse.Namespace) -> int:
    """Run one `vhostd auth` action; VhostdError propagates to the CLI's top level."""
    directory = htpasswd_dir_for(args)
    action = args.auth_action
    if action == "add":
        given = _read_password_stdin() if args.password_stdin else None
        password = store.add_user(directory, args.target, args.user, given, cost=args.cost)
        path = store.credentials_path(directory, args.target)
        if given is None:
            print(f"user {args.user!r} saved in {path}; generated password:", file=sys.stderr)
            print(password, flush=True)
        else:
            print(f"user {args.user!r} saved in {path}", file=sys.stderr)
        return 0
    if action == "rm":
        left = store.remove_user(directory, args.target, args.user)
        path = store.credentials_path(directory, args.target)
        print(f"user {args.user!r} removed from {path}", file=sys.stderr)
        if not left:
            print(
                f"no users left: {args.target} now refuses everyone; "
                f"delete {path} to lift the protection",
                file=sys.stderr,
            )
        return 0
    users, problems = store.list_users(directory, args.target)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    for user in users:
        print(user)
    return 0
