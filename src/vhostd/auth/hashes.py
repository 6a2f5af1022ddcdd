"""Password hash verification for htpasswd entries (pure, slow by design: call off the loop).

bcrypt goes through the `bcrypt` package. Apache MD5 ($apr1$), MD5-crypt ($1$) and
SHA-256/512 crypt ($5$/$6$) are implemented here from their published algorithms
(Poul-Henning Kamp's md5crypt, Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512"),
because Python's `crypt` module is deprecated and absent from 3.13. Every comparison of a
computed digest with a stored one is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import bcrypt

from vhostd.auth.htpasswd import (
    APR1,
    BCRYPT,
    MD5_CRYPT,
    SHA1,
    SHA256_CRYPT,
    SHA512_CRYPT,
    hash_kind,
)

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BCRYPT_MAX_PASSWORD = 72  # bcrypt ignores the rest; bcrypt>=5 raises instead of truncating
DEFAULT_BCRYPT_COST = 10

# Byte orders in which md5crypt and sha-crypt emit their digests, three bytes per group.
_MD5_ORDER = ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))
_SHA256_ORDER = (
    (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14),
    (15, 25, 5), (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
)  # fmt: skip
_SHA512_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41),
)  # fmt: skip

SHA_CRYPT_DEFAULT_ROUNDS = 5000
_SHA_CRYPT_MIN_ROUNDS = 1000
_SHA_CRYPT_MAX_ROUNDS = 999_999_999


def _to64(value: int, count: int) -> str:
    """`count` crypt-alphabet characters for `value`, least significant 6 bits first."""
    out = []
    for _ in range(count):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(out)


def _encode(digest: bytes, order: tuple[tuple[int, int, int], ...]) -> str:
    return "".join(_to64((digest[a] << 16) | (digest[b] << 8) | digest[c], 4) for a, b, c in order)


def md5_crypt(password: bytes, salt: bytes, magic: bytes = b"$apr1$") -> str:
    """md5crypt with `magic` ($1$ for glibc, $apr1$ for Apache); returns the full hash."""
    salt = salt[:8]
    alternate = hashlib.md5(password + salt + password).digest()
    ctx = hashlib.md5(password + magic + salt)
    for remaining in range(len(password), 0, -16):
        ctx.update(alternate[: min(16, remaining)])
    length = len(password)
    while length:
        ctx.update(b"\0" if length & 1 else password[:1])
        length >>= 1
    digest = ctx.digest()
    for i in range(1000):
        step = hashlib.md5(password if i & 1 else digest)
        if i % 3:
            step.update(salt)
        if i % 7:
            step.update(password)
        step.update(digest if i & 1 else password)
        digest = step.digest()
    checksum = _encode(digest, _MD5_ORDER) + _to64(digest[11], 2)
    return f"{magic.decode()}{salt.decode('latin-1')}${checksum}"


def _repeat_to(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def sha_crypt(password: bytes, setting: str, sha512: bool) -> str:
    """SHA-256/512 crypt for `setting` ("$5$[rounds=N$]salt[$...]"); returns the full hash."""
    magic = "$6$" if sha512 else "$5$"
    rest = setting[len(magic) :]
    rounds = SHA_CRYPT_DEFAULT_ROUNDS
    custom_rounds = rest.startswith("rounds=")
    if custom_rounds:
        text, _, rest = rest[len("rounds=") :].partition("$")
        rounds = min(max(int(text), _SHA_CRYPT_MIN_ROUNDS), _SHA_CRYPT_MAX_ROUNDS)
    salt = rest.split("$", 1)[0][:16].encode("latin-1")
    new = hashlib.sha512 if sha512 else hashlib.sha256
    size = 64 if sha512 else 32

    alternate = new(password + salt + password).digest()
    ctx = new(password + salt)
    ctx.update(_repeat_to(alternate, len(password)))
    length = len(password)
    while length:
        ctx.update(alternate if length & 1 else password)
        length >>= 1
    digest = ctx.digest()
    p_bytes = _repeat_to(new(password * len(password)).digest(), len(password))
    s_bytes = _repeat_to(new(salt * (16 + digest[0])).digest(), len(salt))
    for i in range(rounds):
        step = new(p_bytes if i & 1 else digest)
        if i % 3:
            step.update(s_bytes)
        if i % 7:
            step.update(p_bytes)
        step.update(digest if i & 1 else p_bytes)
        digest = step.digest()

    if sha512:
        checksum = _encode(digest, _SHA512_ORDER) + _to64(digest[63], 2)
    else:
        checksum = _encode(digest, _SHA256_ORDER) + _to64((digest[31] << 8) | digest[30], 3)
    assert len(digest) == size
    prefix = f"rounds={rounds}$" if custom_rounds else ""
    return f"{magic}{prefix}{salt.decode('latin-1')}${checksum}"


def _same(computed: str, stored: str) -> bool:
    return hmac.compare_digest(computed.encode("latin-1"), stored.encode("latin-1"))


def verify_password(password: bytes, hashed: str) -> bool:
    """True when `password` matches the htpasswd `hashed` value; False for refused kinds."""
    kind = hash_kind(hashed)
    if kind == BCRYPT:
        return bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], hashed.encode("ascii"))
    if kind == APR1 or kind == MD5_CRYPT:
        magic = b"$apr1$" if kind == APR1 else b"$1$"
        salt = hashed[len(magic) :].split("$", 1)[0].encode("latin-1")
        return _same(md5_crypt(password, salt, magic), hashed)
    if kind == SHA1:
        digest = base64.b64encode(hashlib.sha1(password).digest()).decode()
        return _same("{SHA}" + digest, hashed)
    if kind == SHA256_CRYPT or kind == SHA512_CRYPT:
        return _same(sha_crypt(password, hashed, kind == SHA512_CRYPT), hashed)
    return False


def hash_password(password: bytes, cost: int = DEFAULT_BCRYPT_COST) -> str:
    """A bcrypt hash in Apache's `$2y$` spelling, as `htpasswd -B` writes it."""
    if len(password) > BCRYPT_MAX_PASSWORD:
        raise ValueError(f"bcrypt uses at most {BCRYPT_MAX_PASSWORD} bytes of a password")
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost)).decode("ascii")
    return "$2y$" + hashed[4:]


def crypt_salt(length: int) -> str:
    """A random salt in the crypt alphabet (for md5crypt / sha-crypt settings)."""
    return "".join(secrets.choice(_ITOA64) for _ in range(length))
