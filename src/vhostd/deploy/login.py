"""A deployed project's login: one user, one password, in the htpasswd file of each host.

Files are named after the host (as nginx-proxy does), so the protection applies whichever
provider routes the project. What the deploy added is recorded so undeploy and rollback
remove exactly that: the user, and the file too when the deploy created it and it is empty
(an empty file would still lock everyone out).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from vhostd.auth.store import add_user, credentials_path, generate_password, list_users, remove_user
from vhostd.errors import VhostdError


def _has_user(htpasswd_dir: str, target: str, user: str) -> bool:
    try:
        users, _ = list_users(htpasswd_dir, target)
    except VhostdError:
        return False
    return user in users


def add_login(
    htpasswd_dir: str, hosts: Iterable[str], user: str, undo: Callable[[str, Callable[[], None]], None]
) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
    """Give `user` access to every host; returns (new password or None, targets, files created).

    When the user already exists for every host, nothing changes and no password is shown.
    """
    targets = tuple(hosts)
    missing = [t for t in targets if not _has_user(htpasswd_dir, t, user)]
    if not missing:
        return None, targets, ()
    password = generate_password()
    created: list[str] = []
    for target in targets:  # the same password everywhere: one login for the project
        is_new_file = not os.path.exists(credentials_path(htpasswd_dir, target))
        was_missing = target in missing
        add_user(htpasswd_dir, target, user, password)
        if is_new_file:
            created.append(target)
        if was_missing:
            undo(f"remove login {user!r} for {target}",
                 _remover(htpasswd_dir, target, user, is_new_file))
    return password, targets, tuple(created)


def _remover(htpasswd_dir: str, target: str, user: str, file_created: bool) -> Callable[[], None]:
    return lambda: remove_login(htpasswd_dir, [target], user, [target] if file_created else [])


def remove_login(htpasswd_dir: str, targets: Iterable[str], user: str,
                 created: Iterable[str]) -> None:
    """Remove `user` from each target; delete the files the deploy created once empty."""
    created_files = set(created)
    for target in targets:
        try:
            left = remove_user(htpasswd_dir, target, user)
        except VhostdError:
            continue  # already gone: removed by hand or by an earlier undeploy
        if left == 0 and target in created_files:
            try:
                os.unlink(credentials_path(htpasswd_dir, target))
            except FileNotFoundError:
                pass


@contextmanager
def probe_login(htpasswd_dir: str, targets: tuple[str, ...]) -> Iterator[tuple[str, str] | None]:
    """A throwaway user on a protected site, so a redeploy that shows no password can still
    check that the application (not just the login gate) answers; removed afterwards."""
    if not targets:
        yield None
        return
    user = f"vhostd-deploy-check-{secrets.token_hex(4)}"
    password = generate_password()
    try:
        for target in targets:
            add_user(htpasswd_dir, target, user, password, cost=4)  # lives for seconds only
        yield user, password
    finally:
        remove_login(htpasswd_dir, targets, user, ())
