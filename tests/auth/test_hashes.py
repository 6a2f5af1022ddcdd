"""verify_password against hashes made by the real `htpasswd` and `openssl passwd`."""

from __future__ import annotations

import os
import subprocess

import pytest

from vhostd.auth.hashes import crypt_salt, hash_password, md5_crypt, sha_crypt, verify_password

from .conftest import HTPASSWD_FORMATS, htpasswd_line, openssl_hash, require_htpasswd

PASSWORDS = ["secret", "", "pässwörd ünïcode", "x" * 40, "with:colon and space", "y" * 100]


@pytest.mark.parametrize("fmt", sorted(HTPASSWD_FORMATS))
@pytest.mark.parametrize("password", PASSWORDS)
def test_real_htpasswd_hashes_verify(fmt: str, password: str) -> None:
    if fmt.startswith("bcrypt") and len(password.encode()) > 72:
        pytest.skip("covered by test_bcrypt_uses_the_first_72_bytes_like_apache")
    hashed = htpasswd_line(HTPASSWD_FORMATS[fmt], "u", password).split(":", 1)[1]
    assert verify_password(password.encode(), hashed)
    assert not verify_password((password + "!").encode(), hashed)
    assert not verify_password(password.upper().encode() + b"?", hashed)


def test_bcrypt_uses_the_first_72_bytes_like_apache() -> None:
    password = "z" * 80
    hashed = htpasswd_line(["-B", "-C", "4"], "u", password).split(":", 1)[1]
    assert verify_password(password.encode(), hashed)
    assert verify_password(b"z" * 72 + b"different tail", hashed)
    assert not verify_password(b"z" * 71, hashed)


@pytest.mark.parametrize("flag", ["-1", "-apr1", "-5", "-6"])
def test_openssl_passwd_hashes_verify(flag: str) -> None:
    hashed = openssl_hash(flag, "open sesame")
    assert verify_password(b"open sesame", hashed)
    assert not verify_password(b"open sesamE", hashed)


def test_refused_kinds_never_verify() -> None:
    assert not verify_password(b"secret", "secret")
    des = htpasswd_line(["-d"], "u", "secret").split(":", 1)[1]
    assert not verify_password(b"secret", des)


@pytest.mark.parametrize("sha512", [False, True])
@pytest.mark.parametrize("rounds", [None, 1000, 6001])
def test_our_sha_crypt_is_accepted_by_the_real_tool(
    tmp_path, sha512: bool, rounds: int | None
) -> None:
    """The other direction: htpasswd -v checks hashes we compute ourselves."""
    magic = "$6$" if sha512 else "$5$"
    setting = magic + (f"rounds={rounds}$" if rounds else "") + crypt_salt(16)
    hashed = sha_crypt("Zürich 2024".encode(), setting, sha512)
    _assert_htpasswd_accepts(tmp_path, hashed, "Zürich 2024")


def test_our_apr1_and_bcrypt_are_accepted_by_the_real_tool(tmp_path) -> None:
    _assert_htpasswd_accepts(tmp_path, md5_crypt(b"pw 1", crypt_salt(8).encode()), "pw 1")
    _assert_htpasswd_accepts(tmp_path, hash_password(b"pw 2", cost=4), "pw 2")


def test_sha_crypt_rounds_are_clamped_like_glibc() -> None:
    low = sha_crypt(b"pw", "$5$rounds=10$saltsalt", False)
    assert low.startswith("$5$rounds=1000$saltsalt$")
    assert verify_password(b"pw", low)


def test_hash_password_refuses_more_than_72_bytes() -> None:
    with pytest.raises(ValueError):
        hash_password(b"a" * 73, cost=4)


def _assert_htpasswd_accepts(tmp_path, hashed: str, password: str) -> None:
    path = tmp_path / f"f{os.urandom(4).hex()}"
    path.write_text(f"user:{hashed}\n")
    ok = subprocess.run(
        [require_htpasswd(), "-vb", str(path), "user", password], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [require_htpasswd(), "-vb", str(path), "user", password + "x"], capture_output=True
    )
    assert bad.returncode != 0
