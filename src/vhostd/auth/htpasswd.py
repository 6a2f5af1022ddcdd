"""htpasswd files: parse, classify and render lines (pure, no I/O).

A line is `user:hash`. Accepted hashes are those Apache's `htpasswd` and common tools write
and that are still worth trusting: bcrypt ($2y$/$2b$/$2a$), Apache MD5 ($apr1$), MD5-crypt
($1$), {SHA}, SHA-256/512 crypt ($5$/$6$). Plain text and DES crypt are refused with a
Problem naming file and line, and the line is skipped (the user cannot log in).
"""

from __future__ import annotations

import re

from vhostd.providers.snapshot import Problem

BCRYPT = "bcrypt"
APR1 = "apr1"
MD5_CRYPT = "md5-crypt"
SHA1 = "sha1"
SHA256_CRYPT = "sha256-crypt"
SHA512_CRYPT = "sha512-crypt"

_CRYPT_CHARS = r"[./0-9A-Za-z]"
_HASH_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (BCRYPT, re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")),
    (APR1, re.compile(r"\$apr1\$[^$]{0,8}\$" + _CRYPT_CHARS + r"{22}")),
    (MD5_CRYPT, re.compile(r"\$1\$[^$]{0,8}\$" + _CRYPT_CHARS + r"{22}")),
    (SHA1, re.compile(r"\{SHA\}[A-Za-z0-9+/]{27}=")),
    (SHA256_CRYPT, re.compile(r"\$5\$(rounds=\d+\$)?[^$]{0,16}\$" + _CRYPT_CHARS + r"{43}")),
    (SHA512_CRYPT, re.compile(r"\$6\$(rounds=\d+\$)?[^$]{0,16}\$" + _CRYPT_CHARS + r"{86}")),
)
_DES_CRYPT = re.compile(_CRYPT_CHARS + r"{13}")

Entries = tuple[tuple[str, str], ...]


def hash_kind(hashed: str) -> str | None:
    """The accepted hash family of `hashed`, or None when it is refused or unknown."""
    for kind, shape in _HASH_SHAPES:
        if shape.fullmatch(hashed):
            return kind
    return None


def _refusal(hashed: str) -> str:
    if _DES_CRYPT.fullmatch(hashed):
        return "DES crypt hash refused (8-character limit, trivially cracked); re-add the user"
    if hashed.startswith(("$2", "$apr1$", "$1$", "{SHA}", "$5$", "$6$")):
        return "malformed hash"
    return "plain-text or unsupported hash refused; re-add the user with `vhostd auth add`"


def parse_htpasswd(text: str, path: str) -> tuple[Entries, tuple[Problem, ...]]:
    """Parse an htpasswd file into (user, hash) entries in file order, plus problems.

    Blank lines and `#` comments are ignored, and so is a third `:comment` field (nginx). Refused lines (plain text, DES crypt,
    malformed, duplicate user) become Problem(where="path:line") and are skipped; for a
    duplicate user the first line wins, as in Apache.
    """
    entries: list[tuple[str, str]] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        user, colon, rest = line.partition(":")
        hashed = rest.split(":", 1)[0]  # nginx allows `user:hash:comment`
        if not colon or not user or not hashed:
            problems.append(Problem(where, "expected `user:hash`"))
            continue
        if hash_kind(hashed) is None:
            problems.append(Problem(where, f"user {user!r}: {_refusal(hashed)}"))
            continue
        if user in seen:
            problems.append(Problem(where, f"user {user!r} appears twice; the first line wins"))
            continue
        seen.add(user)
        entries.append((user, hashed))
    return tuple(entries), tuple(problems)


def valid_user_name(user: str) -> bool:
    """A user name that fits on an htpasswd line and in a Basic credential."""
    return (
        bool(user)
        and ":" not in user
        and not any(c.isspace() for c in user)
        and (not user.startswith("#"))
    )


def render_htpasswd(entries: Entries) -> str:
    """The file text for `entries` (one `user:hash` line each, newline-terminated)."""
    return "".join(f"{user}:{hashed}\n" for user, hashed in entries)
