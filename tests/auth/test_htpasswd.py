"""parse_htpasswd: accepted formats, refused lines with file:line, comments, duplicates."""

from __future__ import annotations

import pytest

from vhostd.auth.htpasswd import (
    APR1,
    BCRYPT,
    MD5_CRYPT,
    SHA1,
    SHA256_CRYPT,
    SHA512_CRYPT,
    hash_kind,
    parse_htpasswd,
    render_htpasswd,
    valid_user_name,
)

from .conftest import HTPASSWD_FORMATS, htpasswd_line

EXPECTED_KIND = {
    "bcrypt": BCRYPT,
    "apr1": APR1,
    "sha1": SHA1,
    "sha256-crypt": SHA256_CRYPT,
    "sha512-crypt": SHA512_CRYPT,
    "sha256-crypt-rounds": SHA256_CRYPT,
    "sha512-crypt-rounds": SHA512_CRYPT,
}


@pytest.mark.parametrize("fmt", sorted(HTPASSWD_FORMATS))
def test_every_format_of_the_real_tool_is_accepted(fmt: str) -> None:
    line = htpasswd_line(HTPASSWD_FORMATS[fmt], "alice", "correct horse")
    entries, problems = parse_htpasswd(line + "\n", "pw/site")
    assert problems == ()
    assert entries == (("alice", line.split(":", 1)[1]),)
    assert hash_kind(entries[0][1]) == EXPECTED_KIND[fmt]


def test_des_crypt_from_the_real_tool_is_refused_with_file_and_line() -> None:
    des = htpasswd_line(["-d"], "old", "secret")
    good = htpasswd_line(["-B", "-C", "4"], "new", "secret")
    entries, problems = parse_htpasswd(f"# users\n{des}\n{good}\n", "htpasswd/a.example")
    assert [user for user, _ in entries] == ["new"]
    assert len(problems) == 1
    assert problems[0].where == "htpasswd/a.example:2"
    assert "DES" in problems[0].reason and "'old'" in problems[0].reason


def test_plain_text_is_refused() -> None:
    entries, problems = parse_htpasswd("bob:hunter2\n", "f")
    assert entries == ()
    assert problems[0].where == "f:1"
    assert "plain-text" in problems[0].reason


@pytest.mark.parametrize(
    "line, reason",
    [
        ("no-colon-here", "expected `user:hash`"),
        (":$apr1$abcdefgh$0123456789012345678901", "expected `user:hash`"),
        ("carol:", "expected `user:hash`"),
        ("dave:$2y$05$tooShort", "malformed hash"),
        ("erin:$apr1$salt$short", "malformed hash"),
        ("frank:{SHA}notbase64", "malformed hash"),
    ],
)
def test_malformed_lines_are_reported_and_skipped(line: str, reason: str) -> None:
    entries, problems = parse_htpasswd(f"{line}\n", "p")
    assert entries == ()
    assert problems[0].where == "p:1"
    assert reason in problems[0].reason


def test_blank_lines_comments_crlf_and_nginx_comment_field() -> None:
    sha = htpasswd_line(["-s"], "u1", "pw")
    apr = htpasswd_line(["-m"], "u2", "pw")
    text = f"\r\n# a comment\r\n{sha}:Ops team\r\n   \r\n{apr}\r\n"
    entries, problems = parse_htpasswd(text, "p")
    assert problems == ()
    assert entries == (("u1", sha.split(":")[1]), ("u2", apr.split(":")[1]))


def test_duplicate_user_keeps_the_first_line_like_apache() -> None:
    first = htpasswd_line(["-s"], "u", "one")
    second = htpasswd_line(["-s"], "u", "two")
    entries, problems = parse_htpasswd(f"{first}\n{second}\n", "p")
    assert entries == (("u", first.split(":")[1]),)
    assert problems[0].where == "p:2" and "twice" in problems[0].reason


def test_openssl_md5_crypt_is_accepted() -> None:
    entries, problems = parse_htpasswd("u:$1$t3dGjf9Y$BmU3B1KUYF2sFcP33IlKt/\n", "p")
    assert problems == () and hash_kind(entries[0][1]) == MD5_CRYPT


def test_render_round_trips() -> None:
    entries = (
        ("a", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="),
        ("b", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="),
    )
    assert parse_htpasswd(render_htpasswd(entries), "p") == (entries, ())


@pytest.mark.parametrize(
    "user, ok",
    [
        ("alice", True),
        ("é-ü.user@corp", True),
        ("", False),
        ("a:b", False),
        ("a b", False),
        ("#x", False),
    ],
)
def test_valid_user_name(user: str, ok: bool) -> None:
    assert valid_user_name(user) is ok
