"""Basic-auth gates attached to routes, and the resolver that picks a site's credentials.

The data plane calls `gate.check(authorization, client_ip)` per request and gets ALLOW,
DENY or BLOCKED at once, or a future resolving to one when a password must be hashed.

- Hot path: a credential verified once is remembered by a keyed BLAKE2s digest of the
  header value (random per-process key), so the cache holds no password or replayable
  secret and a hit is one digest plus a dict lookup.
- The cache lives in a `UserTable`, one per htpasswd content; tables are shared across
  route rebuilds while a file's entries are unchanged, and a changed file gets a new, empty
  one (so removing a user or changing a password takes effect with the next table).
- Slow path: bcrypt and friends run in a small thread pool, never on the event loop;
  unknown users are checked against a real hash of the file so they cost the same time.
- Failures feed a process-wide FailureTable (brute-force throttle, answers 429).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import logging
import os
import secrets
import weakref
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from vhostd.auth.hashes import verify_password
from vhostd.auth.htpasswd import hash_kind, parse_htpasswd
from vhostd.auth.throttle import FailureTable, client_key
from vhostd.config.model import Site
from vhostd.providers.snapshot import Credentials
from vhostd.routing.table import AuthResolver

log = logging.getLogger("vhostd.auth")

ALLOW = 200
DENY = 401
BLOCKED = 429

SUCCESS_CACHE_LIMIT = 4096  # verified credentials remembered per htpasswd file
_NETWORK_VERDICT_LIMIT = 4096
_DIGEST_KEY = secrets.token_bytes(32)  # per process: digests are useless elsewhere

Verdict = int | asyncio.Future[int]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_HASHES_IN_FLIGHT = 256  # process-wide: beyond it, new uncached logins get 429

_executor: ThreadPoolExecutor | None = None
_hashes_in_flight = 0
_default_failures = FailureTable()


def _hash_executor() -> ThreadPoolExecutor:
    """A small dedicated pool, so password guesses cannot starve DNS or file work."""
    global _executor
    if _executor is None:
        workers = max(1, min(4, os.cpu_count() or 1))
        _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vhostd-auth")
    return _executor


# Copying a keyed state is ~3x cheaper than building one with key= on every request.
_DIGEST_STATE = hashlib.blake2s(key=_DIGEST_KEY, digest_size=16)


def credential_digest(authorization: bytes) -> bytes:
    """The cache key of an Authorization value: keyed, so it cannot be replayed or reversed."""
    state = _DIGEST_STATE.copy()
    state.update(authorization)
    return state.digest()


def parse_basic(authorization: bytes) -> tuple[str, bytes] | None:
    """`Basic base64(user:password)` → (user, password), or None when malformed."""
    scheme, _, token = authorization.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon or not user:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return user.decode("latin-1"), password


class UserTable:
    """One htpasswd file's users, with the cache of credentials already verified."""

    def __init__(self, entries: tuple[tuple[str, str], ...]) -> None:
        self.hashes: dict[str, str] = dict(entries)
        self.decoy = _decoy_hash(entries)
        self.verified: dict[bytes, str] = {}  # credential digest → user name
        self.pending: dict[bytes, asyncio.Future[bool]] = {}

    def verify(self, user: str, password: bytes) -> bool:
        """Slow: hash `password` for `user`; unknown users cost one hash of the decoy."""
        hashed = self.hashes.get(user)
        if hashed is None:
            if self.decoy is not None:
                verify_password(password, self.decoy)
            return False
        return verify_password(password, hashed)

    def remember(self, digest: bytes, user: str) -> None:
        if len(self.verified) >= SUCCESS_CACHE_LIMIT:
            del self.verified[next(iter(self.verified))]  # oldest first
        self.verified[digest] = user


def _decoy_hash(entries: tuple[tuple[str, str], ...]) -> str | None:
    """A hash of the file's most common kind, so unknown users cost what known ones do."""
    if not entries:
        return None
    kinds = Counter(hash_kind(hashed) for _, hashed in entries)
    common = kinds.most_common(1)[0][0]
    return next(hashed for _, hashed in entries if hash_kind(hashed) == common)


# Tables shared across rebuilds while a file's content is unchanged (weak: dropped with
# the last route table that uses them).
_tables: weakref.WeakValueDictionary[tuple[str, tuple[tuple[str, str], ...]], UserTable] = (
    weakref.WeakValueDictionary()
)


def user_table(name: str, entries: tuple[tuple[str, str], ...]) -> UserTable:
    """The shared UserTable for a file `name` with these `entries`."""
    key = (name, entries)
    table = _tables.get(key)
    if table is None:
        table = _tables[key] = UserTable(entries)
    return table


def _parse_networks(texts: tuple[str, ...], where: str) -> tuple[Network, ...]:
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            log.warning("%s: ignoring invalid network %r in auth allow list", where, text)
    return tuple(networks)


def _challenge(realm: str) -> bytes:
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    return f'Basic realm="{quoted}", charset="UTF-8"'.encode()


class AuthGate:
    """What the data plane consults for one protected route."""

    __slots__ = (
        "realm",
        "forward_authorization",
        "www_authenticate",
        "users",
        "source",
        "_networks",
        "_network_verdicts",
        "_failures",
    )

    def __init__(
        self,
        users: UserTable,
        realm: str,
        forward_authorization: bool = False,
        allow_networks: tuple[str, ...] = (),
        failures: FailureTable | None = None,
        source: str = "",
    ) -> None:
        self.users = users
        self.realm = realm
        self.forward_authorization = forward_authorization
        self.www_authenticate = _challenge(realm)  # the WWW-Authenticate value of a 401
        self.source = source  # the htpasswd file, for logs and `vhostd routes`
        self._networks = _parse_networks(allow_networks, source)
        self._network_verdicts: dict[str, bool] = {}
        self._failures = failures if failures is not None else _default_failures

    def check(self, authorization: bytes | None, client_ip: str) -> Verdict:
        """ALLOW, DENY or BLOCKED now, or a future of one when a hash must be computed."""
        if authorization is not None and credential_digest(authorization) in self.users.verified:
            return ALLOW
        if self._networks and self._in_allowed_network(client_ip):
            return ALLOW
        if authorization is None:
            return DENY
        return self._check_slow(authorization, client_ip)

    def _in_allowed_network(self, client_ip: str) -> bool:
        verdict = self._network_verdicts.get(client_ip)
        if verdict is None:
            verdict = _address_in(client_ip, self._networks)
            if len(self._network_verdicts) >= _NETWORK_VERDICT_LIMIT:
                self._network_verdicts.clear()
            self._network_verdicts[client_ip] = verdict
        return verdict

    def _check_slow(self, authorization: bytes, client_ip: str) -> Verdict:
        global _hashes_in_flight
        key = client_key(client_ip)
        failures = self._failures
        if failures.is_blocked(key) or _hashes_in_flight >= MAX_HASHES_IN_FLIGHT:
            return BLOCKED  # the cap keeps a many-address flood from queueing unbounded work
        parsed = parse_basic(authorization)
        if parsed is None:
            if failures.fail(key):
                _log_blocked(key, failures)
            return DENY
        user, password = parsed
        digest = credential_digest(authorization)
        loop = asyncio.get_running_loop()
        running = self.users.pending.get(digest)
        if running is None or running.get_loop() is not loop:
            # Several connections of one browser send the same credential at once: hash once.
            _hashes_in_flight += 1
            failures.begin(key)
            running = loop.run_in_executor(_hash_executor(), self.users.verify, user, password)
            self.users.pending[digest] = running
            running.add_done_callback(partial(_settle, self.users, digest, user, failures, key))
        verdict: asyncio.Future[int] = loop.create_future()
        running.add_done_callback(partial(_resolve, verdict))
        return verdict

    def retry_after(self, client_ip: str) -> int:
        """Seconds a BLOCKED client should wait (for the 429's Retry-After header)."""
        return self._failures.retry_after(client_key(client_ip))


def _log_blocked(key: str, failures: FailureTable) -> None:
    log.warning(
        "%s: %d failed logins; refusing its logins for %.0fs",
        key,
        failures.limit,
        failures.cooldown,
    )


def _address_in(client_ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(
        candidate.version == network.version and candidate in network
        for candidate in candidates
        for network in networks
    )


def _verified(running: asyncio.Future[bool]) -> bool:
    if running.cancelled():
        return False
    error = running.exception()
    if error is not None:
        log.error("password verification failed: %r", error)
        return False
    return bool(running.result())


def _settle(
    users: UserTable,
    digest: bytes,
    user: str,
    failures: FailureTable,
    key: str,
    running: asyncio.Future[bool],
) -> None:
    global _hashes_in_flight
    _hashes_in_flight -= 1
    users.pending.pop(digest, None)
    ok = _verified(running)
    if ok:
        users.remember(digest, user)
    if failures.end(key, failed=not ok):
        _log_blocked(key, failures)


def _resolve(verdict: asyncio.Future[int], running: asyncio.Future[bool]) -> None:
    if not verdict.done():  # the client may have gone and cancelled it
        verdict.set_result(ALLOW if _verified(running) else DENY)


def path_credentials_name(host: str, path: str) -> str:
    """nginx-proxy's name for a per-path file: `<host>_<sha1(path)>`."""
    return f"{host}_{hashlib.sha1(path.encode()).hexdigest()}"


def _read_explicit(path: str) -> Credentials:
    """An explicit `auth = "file"` read at resolve time; missing → no users (fail closed)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as error:
        log.warning("%s: cannot read htpasswd file (%s); nobody can log in", path, error.strerror)
        return Credentials(os.path.basename(path), path, ())
    entries, problems = parse_htpasswd(text, path)
    for problem in problems:
        log.warning("%s", problem)
    return Credentials(os.path.basename(path), path, entries)


def make_auth_resolver(
    credentials: tuple[Credentials, ...],
    htpasswd_dir: str,
    failures: FailureTable | None = None,
) -> AuthResolver:
    """Build the resolver that attaches a gate to each (site, host pattern, path) route.

    Most specific wins: a file named `<host>_<sha1(path)>` (nginx-proxy, per path), one
    named after the host pattern, one named after the site, then the site's `auth` file.
    Routes with none of these are unprotected (the resolver returns None).
    """
    by_name: dict[str, Credentials] = {}
    for item in credentials:
        by_name.setdefault(item.name, item)
        by_name.setdefault(item.name.lower(), item)
    by_path = {os.path.realpath(item.path): item for item in credentials if item.path}
    explicit_read: dict[str, Credentials] = {}  # one read per file per rebuild

    def credentials_for(site: Site, host: str, path: str) -> Credentials | None:
        if host:
            for name in (path_credentials_name(host, path), host, host.lower()):
                found = by_name.get(name)
                if found is not None:
                    return found
        found = by_name.get(site.name)
        if found is not None or not site.auth.file:
            return found
        file = site.auth.file
        if not os.path.isabs(file):
            file = os.path.join(htpasswd_dir, file)
        real = os.path.realpath(file)
        if real in by_path:
            return by_path[real]
        if real not in explicit_read:
            explicit_read[real] = _read_explicit(file)
        return explicit_read[real]

    def resolve(site: Site, host: str, path: str) -> AuthGate | None:
        found = credentials_for(site, host, path)
        if found is None:
            return None
        return AuthGate(
            user_table(found.path or found.name, found.entries),
            realm=site.auth.realm or site.name,
            forward_authorization=site.auth.forward_authorization,
            allow_networks=site.auth.allow_networks,
            failures=failures,
            source=found.path or found.name,
        )

    return resolve


def auth_factory(htpasswd_dir: str) -> Callable[[tuple[Credentials, ...]], AuthResolver]:
    """What the runtime hands to RoutePipeline(auth_factory=...)."""
    return partial(make_auth_resolver, htpasswd_dir=htpasswd_dir)
