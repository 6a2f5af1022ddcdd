"""FailureTable: block after N failures, cooling period, in-flight attempts, bounded memory."""

from __future__ import annotations

from vhostd.auth.throttle import FailureTable, client_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def table(**kwargs) -> tuple[FailureTable, FakeClock]:
    clock = FakeClock()
    return FailureTable(clock=clock, **kwargs), clock


def test_blocks_after_limit_failures_then_cools_down() -> None:
    failures, clock = table(limit=3, window=60, cooldown=30)
    for _ in range(2):
        failures.fail("1.2.3.4")
    assert not failures.is_blocked("1.2.3.4")
    failures.fail("1.2.3.4")
    assert failures.is_blocked("1.2.3.4")
    assert not failures.is_blocked("5.6.7.8"), "other clients are not slowed"
    clock.now += 29.9
    assert failures.is_blocked("1.2.3.4")
    clock.now += 0.2
    assert not failures.is_blocked("1.2.3.4")
    assert len(failures) == 0, "a cooled-down client leaves the table"


def test_failures_outside_the_window_are_forgotten() -> None:
    failures, clock = table(limit=3, window=60, cooldown=30)
    failures.fail("a")
    failures.fail("a")
    clock.now += 61
    failures.fail("a")
    failures.fail("a")
    assert not failures.is_blocked("a")
    failures.fail("a")
    assert failures.is_blocked("a")


def test_in_flight_attempts_count_against_the_limit() -> None:
    failures, _ = table(limit=3)
    for _ in range(3):
        failures.begin("a")
    assert failures.is_blocked("a"), "no fourth guess while three are being hashed"
    failures.end("a", failed=False)
    assert not failures.is_blocked("a")
    failures.end("a", failed=True)
    failures.end("a", failed=True)
    assert not failures.is_blocked("a")
    failures.fail("a")
    assert failures.is_blocked("a")


def test_success_does_not_reset_failures() -> None:
    """Else one valid account would let an attacker keep guessing the others."""
    failures, _ = table(limit=2)
    failures.fail("a")
    failures.begin("a")
    failures.end("a", failed=False)
    failures.fail("a")
    assert failures.is_blocked("a")


def test_memory_is_bounded() -> None:
    failures, _ = table(limit=5, max_clients=100)
    for number in range(1000):
        failures.fail(f"10.0.{number // 256}.{number % 256}")
    assert len(failures) == 100


def test_clients_that_succeed_leave_no_trace() -> None:
    failures, _ = table()
    failures.begin("a")
    failures.end("a", failed=False)
    assert len(failures) == 0


def test_client_key_groups_ipv6_by_64_and_unmaps_ipv4() -> None:
    assert client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("fe80::1%eth0") == client_key("fe80::2")


def test_retry_after_counts_down_and_fail_reports_the_blocking_failure() -> None:
    failures, clock = table(limit=2, cooldown=30)
    assert failures.retry_after("a") == 0
    assert failures.fail("a") is False
    assert failures.fail("a") is True
    assert failures.retry_after("a") == 30
    clock.now += 12.5
    assert failures.retry_after("a") == 18
    clock.now += 18
    assert failures.retry_after("a") == 0
