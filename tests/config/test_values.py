"""Converters of config values: durations, sizes, addresses, backends, networks."""

from __future__ import annotations

import dataclasses

import pytest

from vhostd.config import values
from vhostd.config.model import Backend


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("600s", 600.0),
        ("5m", 300.0),
        ("250ms", 0.25),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        (" 10 S ", 10.0),
        ("30", 30.0),
        (30, 30.0),
        (0.5, 0.5),
    ],
)
def test_duration_accepts(raw: object, seconds: float) -> None:
    assert values.duration(raw) == seconds


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("10x", "invalid duration '10x'"),
        ("s", "invalid duration"),
        ("-5s", "invalid duration"),
        ("", "invalid duration"),
        (0, "must be positive"),
        ("0s", "must be positive"),
        (True, "got a boolean"),
        ([1], "got a list"),
    ],
)
def test_duration_refuses(raw: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        values.duration(raw)


@pytest.mark.parametrize(
    ("raw", "count"),
    [
        ("10m", 10 * 1024**2),
        ("1g", 1024**3),
        ("512k", 512 * 1024),
        ("512KB", 512 * 1024),
        ("2MiB", 2 * 1024**2),
        ("100", 100),
        (0, 0),
        (4096, 4096),
    ],
)
def test_size_accepts(raw: object, count: int) -> None:
    assert values.size(raw) == count


@pytest.mark.parametrize("raw", ["10q", "k", "-1", -1, 1.5, False, "1 0m"])
def test_size_refuses(raw: object) -> None:
    with pytest.raises(ValueError):
        values.size(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:8080", ("::1", 8080)),
        ("localhost:80", ("localhost", 80)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ],
)
def test_split_host_port(raw: str, expected: tuple[str, int]) -> None:
    assert values.split_host_port(raw) == expected


@pytest.mark.parametrize(
    "raw", ["127.0.0.1", ":8080", "host:-1", "host:70000", "host:http", "::1:8080", "[::1]8080"]
)
def test_split_host_port_refuses(raw: str) -> None:
    with pytest.raises(ValueError):
        values.split_host_port(raw)


def test_admin_false_disables() -> None:
    assert values.admin_address(False) is None
    assert values.admin_address("127.0.0.1:9") == "127.0.0.1:9"
    with pytest.raises(ValueError):
        values.admin_address(True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://127.0.0.1:3000", Backend("127.0.0.1", 3000)),
        ("127.0.0.1:3000", Backend("127.0.0.1", 3000)),
        ("http://app.local", Backend("app.local", 80)),
        ("https://app.local", Backend("app.local", 443, "https")),
        ("http://[::1]:8081/", Backend("::1", 8081)),
    ],
)
def test_backend_accepts(raw: str, expected: Backend) -> None:
    assert values.backend(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("ftp://h:1", "scheme must be http or https"),
        ("http://h:1/app", "use `dest`"),
        ("http://h:99999", "invalid backend"),
        ("http://u:p@h:1", "credentials"),
        ("", "expected a backend URL"),
        (3000, "expected a backend URL"),
    ],
)
def test_backend_refuses(raw: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        values.backend(raw)


def test_networks_normalise_and_refuse() -> None:
    assert values.networks(["10.0.0.1/8", "::1"]) == ("10.0.0.0/8", "::1/128")
    assert values.networks("192.168.0.0/16") == ("192.168.0.0/16",)
    with pytest.raises(ValueError, match="invalid network 'ten'"):
        values.networks(["ten"])


def test_backends_are_equal_by_every_field_and_hash_alike() -> None:
    """Two sites naming one server hold distinct Backend objects; the pool keys on them."""
    one = Backend("127.0.0.1", 8080, "http", "web-1", "healthy")
    same = Backend("127.0.0.1", 8080, "http", "web-1", "healthy")
    assert one is not same and one == same and hash(one) == hash(same)
    assert {one: "pool"}[same] == "pool"
    for field, other in (
        ("host", "127.0.0.2"),
        ("port", 8081),
        ("scheme", "https"),
        ("label", "web-2"),
        ("health", "unhealthy"),
    ):
        changed = dataclasses.replace(one, **{field: other})
        assert changed != one and not (changed == one), field
    assert one != ("127.0.0.1", 8080) and one.__eq__(("127.0.0.1", 8080)) is NotImplemented
