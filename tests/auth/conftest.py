"""Shared fixtures for auth tests: files made by the real Apache `htpasswd` tool."""

from __future__ import annotations

import shutil
import subprocess

import pytest

# Every format Debian's apache2-utils `htpasswd` writes that vhostd accepts.
HTPASSWD_FORMATS = {
    "bcrypt": ["-B", "-C", "5"],
    "apr1": ["-m"],
    "sha1": ["-s"],
    "sha256-crypt": ["-2"],
    "sha512-crypt": ["-5"],
    "sha256-crypt-rounds": ["-2", "-r", "7000"],
    "sha512-crypt-rounds": ["-5", "-r", "12000"],
}


def require_htpasswd() -> str:
    """The `htpasswd` binary (installed by `make test` via scripts/ensure-system.sh)."""
    found = shutil.which("htpasswd")
    if found is None:
        pytest.skip("apache2-utils' htpasswd is not installed (run `make system`)")
    return found


def htpasswd_line(flags: list[str], user: str, password: str) -> str:
    """One `user:hash` line as the real `htpasswd -nb` prints it."""
    out = subprocess.run(
        [require_htpasswd(), "-nb", *flags, user, password],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip()


def openssl_hash(flag: str, password: str) -> str:
    """A hash made by `openssl passwd` (md5-crypt, apr1, sha-crypt)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return subprocess.run(
        ["openssl", "passwd", flag, "-stdin"],
        input=password + "\n",
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
