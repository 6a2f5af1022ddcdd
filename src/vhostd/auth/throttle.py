"""Brute-force throttle: failed logins per client address, bounded in memory (pure).

After `limit` failures within `window` seconds from one client, its further uncached
attempts are refused (429) for `cooldown` seconds. Verifications still in flight count
against the limit, so a client cannot pipeline hundreds of guesses before the first fails.
IPv6 clients are keyed by their /64, which one attacker usually holds whole. The table
keeps at most `max_clients` addresses, dropping the least recently failing first.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_LIMIT = 10
DEFAULT_WINDOW = 60.0
DEFAULT_COOLDOWN = 60.0
DEFAULT_MAX_CLIENTS = 16384


def client_key(client_ip: str) -> str:
    """The address a failure is counted against: the IP itself, or its /64 for IPv6."""
    if ":" not in client_ip:
        return client_ip
    try:
        address = ipaddress.IPv6Address(client_ip.split("%", 1)[0])
    except ValueError:
        return client_ip
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False).network_address) + "/64"


@dataclass(slots=True)
class _ClientRecord:
    window_start: float
    failures: int = 0
    in_flight: int = 0
    blocked_until: float = 0.0


class FailureTable:
    """Counts failed logins per client and says who is blocked."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        cooldown: float = DEFAULT_COOLDOWN,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.cooldown = cooldown
        self.max_clients = max_clients
        self.clock = clock
        self._clients: OrderedDict[str, _ClientRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def _current(self, key: str, now: float) -> _ClientRecord | None:
        record = self._clients.get(key)
        if record is None:
            return None
        if record.blocked_until and now >= record.blocked_until:
            record.blocked_until = 0.0
            record.failures = 0
            record.window_start = now
        elif not record.blocked_until and now - record.window_start > self.window:
            record.failures = 0
            record.window_start = now
        if not record.failures and not record.in_flight and not record.blocked_until:
            del self._clients[key]
            return None
        return record

    def is_blocked(self, key: str) -> bool:
        """True when `key` (from client_key) may not try a password now."""
        record = self._current(key, self.clock())
        if record is None:
            return False
        if record.blocked_until:
            return True
        return record.failures + record.in_flight >= self.limit

    def retry_after(self, key: str) -> int:
        """Whole seconds until `key` may try again (0 when it is not blocked)."""
        record = self._current(key, self.clock())
        if record is None or not record.blocked_until:
            return 0
        return max(1, int(record.blocked_until - self.clock() + 0.999))

    def begin(self, key: str) -> None:
        """A verification for `key` starts (counts against the limit until it ends)."""
        now = self.clock()
        record = self._current(key, now)
        if record is None:
            record = self._clients[key] = _ClientRecord(window_start=now)
            self._evict()
        record.in_flight += 1

    def end(self, key: str, failed: bool) -> bool:
        """The verification begun for `key` is over; `failed` when the password was wrong.

        Returns True when this failure blocked the client.
        """
        now = self.clock()
        record = self._clients.get(key)
        if record is None:  # evicted meanwhile
            if not failed:
                return False
            record = self._clients[key] = _ClientRecord(window_start=now)
            self._evict()
        record.in_flight = max(0, record.in_flight - 1)
        if failed:
            return self.fail(key, record, now)
        if not record.failures and not record.in_flight and not record.blocked_until:
            del self._clients[key]
        return False

    def fail(self, key: str, record: _ClientRecord | None = None, now: float | None = None) -> bool:
        """Count one failure for `key` (a wrong password or a malformed credential).

        Returns True when this failure blocked the client.
        """
        now = self.clock() if now is None else now
        if record is None:
            record = self._current(key, now)
            if record is None:
                record = self._clients[key] = _ClientRecord(window_start=now)
                self._evict()
        if not record.failures:
            record.window_start = now
        record.failures += 1
        self._clients.move_to_end(key)
        if record.failures >= self.limit and not record.blocked_until:
            record.blocked_until = now + self.cooldown
            return True
        return False

    def _evict(self) -> None:
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
