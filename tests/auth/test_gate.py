"""AuthGate and make_auth_resolver: verdicts, the success cache, throttle, networks, precedence."""

from __future__ import annotations

import asyncio
import base64
import statistics
import time

import pytest

from vhostd.auth.gate import (
    ALLOW,
    BLOCKED,
    DENY,
    SUCCESS_CACHE_LIMIT,
    AuthGate,
    UserTable,
    make_auth_resolver,
    parse_basic,
    path_credentials_name,
)
from vhostd.auth.hashes import hash_password
from vhostd.auth.throttle import FailureTable
from vhostd.config.model import AuthPolicy, Site
from vhostd.providers.snapshot import Credentials

from .conftest import htpasswd_line

SITE = Site(name="preview", hosts=("preview.example", "*.preview.example"))
ALICE = hash_password(b"wonderland", cost=4)
BOB = hash_password(b"builder", cost=4)


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


async def settle(verdict: int | asyncio.Future[int]) -> int:
    return await verdict if isinstance(verdict, asyncio.Future) else verdict


def fresh_entries() -> tuple[tuple[str, str], ...]:
    """New salts: UserTables (and their caches) are shared per file content, process-wide."""
    return (
        ("alice", hash_password(b"wonderland", cost=4)),
        ("bob", hash_password(b"builder", cost=4)),
    )


def gate_for(
    entries: tuple[tuple[str, str], ...] | None = None,
    site: Site = SITE,
    failures: FailureTable | None = None,
    name: str = "preview.example",
) -> AuthGate:
    entries = fresh_entries() if entries is None else entries
    resolver = make_auth_resolver(
        (Credentials(name, f"/htpasswd/{name}", entries),),
        "/htpasswd",
        failures if failures is not None else FailureTable(),
    )
    gate = resolver(site, "preview.example", "/")
    assert isinstance(gate, AuthGate)
    return gate


def test_verified_credentials_are_then_allowed_synchronously() -> None:
    async def scenario() -> None:
        gate = gate_for()
        first = gate.check(basic("alice", "wonderland"), "127.0.0.1")
        assert isinstance(first, asyncio.Future), "an uncached check hashes off the loop"
        assert await first == ALLOW
        assert gate.check(basic("alice", "wonderland"), "127.0.0.2") == ALLOW

    asyncio.run(scenario())


def test_wrong_unknown_missing_and_malformed_credentials_are_denied() -> None:
    async def scenario() -> None:
        gate = gate_for()
        assert await settle(gate.check(basic("alice", "wrong"), "127.0.0.1")) == DENY
        assert await settle(gate.check(basic("mallory", "wonderland"), "127.0.0.1")) == DENY
        assert gate.check(None, "127.0.0.1") == DENY
        for header in (
            b"Bearer abc",
            b"Basic !!!notbase64",
            basic("", "x"),
            b"Basic " + base64.b64encode(b"nocolon"),
        ):
            assert gate.check(header, "127.0.0.1") == DENY
        # A wrong password is never cached: the next try is hashed again.
        again = gate.check(basic("alice", "wrong"), "127.0.0.1")
        assert isinstance(again, asyncio.Future)
        assert await again == DENY

    asyncio.run(scenario())


def test_repeated_failures_block_one_client_only() -> None:
    async def scenario() -> None:
        failures = FailureTable(limit=10, window=60, cooldown=60)
        gate = gate_for(failures=failures)
        assert await settle(gate.check(basic("bob", "builder"), "127.0.0.9")) == ALLOW
        for attempt in range(10):
            assert await settle(gate.check(basic("alice", f"guess{attempt}"), "127.0.0.1")) == DENY
        assert gate.check(basic("alice", "wonderland"), "127.0.0.1") == BLOCKED
        assert gate.retry_after("127.0.0.1") == 60 and gate.retry_after("127.0.0.2") == 0
        assert gate.check(basic("alice", "guess"), "127.0.0.1") == BLOCKED
        # Others are not slowed, and a credential already verified still passes.
        assert await settle(gate.check(basic("alice", "wonderland"), "127.0.0.2")) == ALLOW
        assert gate.check(basic("bob", "builder"), "127.0.0.1") == ALLOW

    asyncio.run(scenario())


def test_pipelined_guesses_are_capped_before_any_finishes() -> None:
    async def scenario() -> None:
        gate = gate_for(failures=FailureTable(limit=5))
        verdicts = [gate.check(basic("alice", f"g{n}"), "127.0.0.1") for n in range(20)]
        assert sum(isinstance(v, asyncio.Future) for v in verdicts) == 5
        assert verdicts[5:] == [BLOCKED] * 15
        assert [await settle(v) for v in verdicts[:5]] == [DENY] * 5

    asyncio.run(scenario())


def test_same_credential_on_parallel_connections_is_hashed_once() -> None:
    async def scenario() -> None:
        gate = gate_for()
        verdicts = [gate.check(basic("alice", "wonderland"), "127.0.0.1") for _ in range(6)]
        assert len(gate.users.pending) == 1
        assert await asyncio.gather(*verdicts) == [ALLOW] * 6  # type: ignore[arg-type]
        assert gate.users.pending == {}

    asyncio.run(scenario())


def test_cache_holds_no_password_or_replayable_secret() -> None:
    async def scenario() -> None:
        gate = gate_for()
        header = basic("alice", "wonderland")
        assert await settle(gate.check(header, "127.0.0.1")) == ALLOW
        (key,) = gate.users.verified
        assert len(key) == 16
        for secret in (b"wonderland", header, header.split()[1]):
            assert secret not in key
        assert gate.users.verified[key] == "alice"

    asyncio.run(scenario())


def test_success_cache_is_bounded() -> None:
    users = UserTable((("alice", ALICE),))
    for number in range(SUCCESS_CACHE_LIMIT + 50):
        users.remember(number.to_bytes(16, "big"), "alice")
    assert len(users.verified) == SUCCESS_CACHE_LIMIT


def test_cache_survives_rebuilds_while_the_file_is_unchanged_and_not_after() -> None:
    async def scenario() -> None:
        failures = FailureTable()
        entries = fresh_entries()
        first = gate_for(entries, failures=failures)
        assert await settle(first.check(basic("alice", "wonderland"), "127.0.0.1")) == ALLOW
        assert await settle(first.check(basic("bob", "builder"), "127.0.0.1")) == ALLOW

        same = gate_for(tuple(entries), failures=failures)  # a rebuild, equal content
        assert same.check(basic("alice", "wonderland"), "127.0.0.1") == ALLOW

        bob_removed = gate_for(entries[:1], failures=failures)
        assert await settle(bob_removed.check(basic("bob", "builder"), "127.0.0.1")) == DENY
        new_alice = hash_password(b"new password", cost=4)
        changed = gate_for((("alice", new_alice),), failures=failures)
        assert await settle(changed.check(basic("alice", "wonderland"), "127.0.0.1")) == DENY
        assert await settle(changed.check(basic("alice", "new password"), "127.0.0.1")) == ALLOW

    asyncio.run(scenario())


def test_allowed_networks_pass_without_login() -> None:
    policy = AuthPolicy(allow_networks=("10.20.0.0/16", "2001:db8::/32", "not-a-network"))
    gate = gate_for(site=Site(name="preview", hosts=("preview.example",), auth=policy))
    assert gate.check(None, "10.20.3.4") == ALLOW
    assert gate.check(None, "::ffff:10.20.9.9") == ALLOW
    assert gate.check(None, "2001:db8:5::1") == ALLOW
    assert gate.check(None, "10.21.0.1") == DENY
    assert gate.check(None, "127.0.0.1") == DENY
    assert gate.check(None, "garbage") == DENY


def test_realm_and_forwarding_come_from_the_site() -> None:
    plain = gate_for()
    assert plain.realm == "preview" and not plain.forward_authorization
    policy = AuthPolicy(realm='Zol "preview"', forward_authorization=True)
    gate = gate_for(site=Site(name="preview", hosts=("preview.example",), auth=policy))
    assert gate.realm == 'Zol "preview"' and gate.forward_authorization
    assert gate.www_authenticate == b'Basic realm="Zol \\"preview\\"", charset="UTF-8"'


def test_resolver_precedence_path_then_host_then_site_then_explicit_file(tmp_path) -> None:
    explicit = tmp_path / "explicit"
    explicit.write_text(htpasswd_line(["-B", "-C", "4"], "x", "y") + "\n")
    site = Site(
        name="shop",
        hosts=("shop.example", "Shop.Other"),
        paths=("/", "/admin"),
        auth=AuthPolicy(file=str(explicit)),
    )
    names = [path_credentials_name("shop.example", "/admin"), "shop.example", "shop.other", "shop"]
    credentials = tuple(Credentials(n, str(tmp_path / n), (("u", ALICE),)) for n in names)
    resolve = make_auth_resolver(credentials, str(tmp_path))

    def source(pattern: str, path: str, creds=credentials) -> str | None:
        gate = make_auth_resolver(creds, str(tmp_path))(site, pattern, path)
        return None if gate is None else gate.source  # type: ignore[attr-defined]

    assert source("shop.example", "/admin") == str(tmp_path / names[0])
    assert source("shop.example", "/") == str(tmp_path / "shop.example")
    assert source("Shop.Other", "/") == str(tmp_path / "shop.other"), "host names ignore case"
    assert source("", "/") == str(tmp_path / "shop"), "the default route uses the site's file"
    assert source("shop.example", "/", credentials[3:]) == str(tmp_path / "shop")
    assert source("shop.example", "/", ()) == str(explicit)
    unprotected = Site(name="open", hosts=("open.example",))
    assert resolve(unprotected, "open.example", "/") is None


def test_explicit_file_that_is_missing_fails_closed(tmp_path) -> None:
    async def scenario() -> None:
        site = Site(name="s", hosts=("s.example",), auth=AuthPolicy(file=str(tmp_path / "nope")))
        gate = make_auth_resolver((), str(tmp_path), FailureTable())(site, "s.example", "/")
        assert isinstance(gate, AuthGate)
        assert await settle(gate.check(basic("anyone", "anything"), "127.0.0.1")) == DENY

    asyncio.run(scenario())


def test_explicit_relative_file_resolves_in_htpasswd_dir(tmp_path) -> None:
    async def scenario() -> None:
        (tmp_path / "team").write_text(htpasswd_line(["-m"], "dev", "pw") + "\n")
        site = Site(name="s", hosts=("s.example",), auth=AuthPolicy(file="team"))
        gate = make_auth_resolver((), str(tmp_path), FailureTable())(site, "s.example", "/")
        assert isinstance(gate, AuthGate)
        assert await settle(gate.check(basic("dev", "pw"), "127.0.0.1")) == ALLOW

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "header, expected",
    [
        (basic("alice", "pw:with:colons"), ("alice", b"pw:with:colons")),
        (b"basic " + base64.b64encode("zoë:é".encode()), ("zoë", "é".encode())),
        (b"Basic " + base64.b64encode(b"l\xe9a:x"), ("léa", b"x")),
        (b"Basic", None),
        (b"Digest abc", None),
    ],
)
def test_parse_basic(header: bytes, expected) -> None:
    assert parse_basic(header) == expected


def test_unknown_users_take_as_long_as_known_ones() -> None:
    """The slow part, hashing, costs the same whether the user exists or not."""
    users = UserTable((("alice", hash_password(b"pw", cost=9)), ("bob", BOB)))
    known, unknown = [], []
    for _ in range(5):
        start = time.perf_counter()
        users.verify("alice", b"wrong")
        known.append(time.perf_counter() - start)
        start = time.perf_counter()
        users.verify("nobody", b"wrong")
        unknown.append(time.perf_counter() - start)
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.6 < ratio < 1.6, (known, unknown)


def test_hashing_does_not_block_the_event_loop() -> None:
    async def scenario() -> tuple[float, float]:
        gate = gate_for((("slow", hash_password(b"pw", cost=12)),))
        loop = asyncio.get_running_loop()
        gaps: list[float] = []
        last = loop.time()

        def tick() -> None:
            nonlocal last
            now = loop.time()
            gaps.append(now - last)
            last = now
            if not verdict.done():
                loop.call_later(0.002, tick)

        started = loop.time()
        verdict = gate.check(basic("slow", "pw"), "127.0.0.1")
        assert isinstance(verdict, asyncio.Future)
        loop.call_soon(tick)
        assert await verdict == ALLOW
        return loop.time() - started, max(gaps)

    hashing, longest_gap = asyncio.run(scenario())
    assert longest_gap < hashing / 3, (hashing, longest_gap)


def test_a_flood_from_many_addresses_cannot_queue_unbounded_hashing(monkeypatch) -> None:
    import vhostd.auth.gate as gate_module

    monkeypatch.setattr(gate_module, "MAX_HASHES_IN_FLIGHT", gate_module._hashes_in_flight + 8)

    async def scenario() -> None:
        gate = gate_for()
        verdicts = [gate.check(basic("alice", f"g{n}"), f"127.0.1.{n}") for n in range(20)]
        assert sum(isinstance(v, asyncio.Future) for v in verdicts) == 8
        assert verdicts[8:] == [BLOCKED] * 12
        assert [await settle(v) for v in verdicts[:8]] == [DENY] * 8
        assert await settle(gate.check(basic("alice", "wonderland"), "127.0.2.1")) == ALLOW

    asyncio.run(scenario())
