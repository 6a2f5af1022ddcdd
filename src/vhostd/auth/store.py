"""htpasswd files on disk: one file per target (a host or a site name) in `htpasswd_dir`.

Used by `vhostd auth` and `vhostd deploy`. Every write replaces the file atomically (temp
file in the same directory + rename, mode 0640), so the file watcher never sees half a file;
edits take a lock on the directory so two concurrent commands do not lose an update. Lines
we do not understand (comments, refused hashes) are kept as they are.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from vhostd.auth.hashes import BCRYPT_MAX_PASSWORD, DEFAULT_BCRYPT_COST, hash_password
from vhostd.auth.htpasswd import parse_htpasswd, valid_user_name
from vhostd.errors import VhostdError
from vhostd.providers.snapshot import Problem

FILE_MODE = 0o640
GENERATED_PASSWORD_BYTES = 15  # 120 bits → 20 URL-safe characters


def generate_password() -> str:
    """A strong random password, easy to paste (URL-safe alphabet, 20 characters)."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def credentials_path(htpasswd_dir: str, target: str) -> str:
    """The file of `target` (a host or a site name) inside `htpasswd_dir`."""
    if (
        not target
        or target in (".", "..")
        or target.startswith(".")
        or "/" in target
        or "\0" in target
        or any(c.isspace() for c in target)
    ):
        raise VhostdError(f"{target!r} is not a host or site name usable as a file name")
    return os.path.join(htpasswd_dir, target)


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise VhostdError(f"cannot read: {error.strerror}", path) from error


def write_atomically(path: str, text: str) -> None:
    """Replace `path` with `text` via a temp file + rename; mode 0640, group kept."""
    directory = os.path.dirname(path) or "."
    try:
        previous_gid = os.stat(path).st_gid
    except FileNotFoundError:
        previous_gid = -1
    # A dot name: watchers of htpasswd_dir ignore hidden files, so they never see it.
    fd, temp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            if previous_gid != -1:
                try:
                    os.fchown(handle.fileno(), -1, previous_gid)
                except PermissionError:
                    pass  # not ours to keep; the mode still protects it
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def _locked(directory: str) -> Iterator[None]:
    """An exclusive lock on the directory itself: no lock file for the watcher to see."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _line_user(line: str) -> str | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#") or ":" not in stripped:
        return None
    return stripped.split(":", 1)[0]


def _without_user(text: str, user: str) -> tuple[list[str], int]:
    kept: list[str] = []
    removed = 0
    for line in text.splitlines(keepends=True):
        if _line_user(line) == user:
            removed += 1
        else:
            kept.append(line if line.endswith("\n") else line + "\n")
    return kept, removed


def _with_user(text: str, user: str, hashed: str) -> str:
    """`text` with `user`'s line replaced in place (or appended), later duplicates dropped."""
    lines: list[str] = []
    placed = False
    for line in text.splitlines(keepends=True):
        if _line_user(line) == user:
            if not placed:
                lines.append(f"{user}:{hashed}\n")
                placed = True
        else:
            lines.append(line if line.endswith("\n") else line + "\n")
    if not placed:
        lines.append(f"{user}:{hashed}\n")
    return "".join(lines)


def add_user(
    htpasswd_dir: str,
    target: str,
    user: str,
    password: str | None = None,
    cost: int = DEFAULT_BCRYPT_COST,
) -> str:
    """Add `user` to `target`'s file (or change their password); returns the password.

    With no `password` a strong one is generated: show it to the user once, it is not
    stored anywhere but as a bcrypt hash. The directory is created when missing.
    """
    if not valid_user_name(user):
        raise VhostdError(f"{user!r} is not a valid user name (no ':', spaces, or leading '#')")
    if password is None:
        password = generate_password()
    if not password:
        raise VhostdError("the password is empty")
    secret = password.encode("utf-8")
    if len(secret) > BCRYPT_MAX_PASSWORD:
        raise VhostdError(f"the password is longer than bcrypt's {BCRYPT_MAX_PASSWORD} bytes")
    path = credentials_path(htpasswd_dir, target)
    hashed = hash_password(secret, cost)  # slow: done before taking the lock
    os.makedirs(htpasswd_dir, exist_ok=True)
    with _locked(htpasswd_dir):
        write_atomically(path, _with_user(_read_text(path) or "", user, hashed))
    return password


def remove_user(htpasswd_dir: str, target: str, user: str) -> int:
    """Remove `user` from `target`'s file; returns how many users are left.

    Raises VhostdError when the file or the user does not exist. A file left empty still
    protects its target (nobody can log in); delete it to lift the protection.
    """
    path = credentials_path(htpasswd_dir, target)
    with _locked(htpasswd_dir) if os.path.isdir(htpasswd_dir) else _no_lock():
        text = _read_text(path)
        if text is None:
            raise VhostdError(f"no htpasswd file for {target!r}", path)
        lines, removed = _without_user(text, user)
        if not removed:
            raise VhostdError(f"no user {user!r} in this file", path)
        write_atomically(path, "".join(lines))
    return sum(1 for line in lines if _line_user(line) is not None)


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


def list_users(htpasswd_dir: str, target: str) -> tuple[tuple[str, ...], tuple[Problem, ...]]:
    """The users that can log in to `target`, in file order, and the refused lines."""
    path = credentials_path(htpasswd_dir, target)
    text = _read_text(path)
    if text is None:
        raise VhostdError(f"no htpasswd file for {target!r}", path)
    entries, problems = parse_htpasswd(text, path)
    return tuple(user for user, _ in entries), problems
