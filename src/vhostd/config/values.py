"""Value converters for the TOML configuration (pure).

Each converter takes what tomllib produced and returns the typed value or raises ValueError
with a reason a user can act on; the loader adds the file:line. Durations are "600s", "5m",
"250ms", "1h" or a number of seconds; sizes are "512k", "10m", "1g" or a number of bytes.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from vhostd.config.model import Backend

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _type_name(value: object) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def duration(value: object) -> float:
    """"600s", "5m", "250ms", "1h" or a number of seconds → seconds (float, > 0)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as \"30s\", got {_type_name(value)}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(
                f"invalid duration {value!r}: use a number with ms, s, m or h (\"600s\", \"5m\")"
            )
        seconds = float(match.group(1)) * _DURATION_UNITS[(match.group(2) or "s").lower()]
    else:
        raise ValueError(f"expected a duration such as \"30s\", got {_type_name(value)}")
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


def size(value: object) -> int:
    """"512k", "10m", "1g" or a number of bytes → bytes (int, >= 0)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as \"10m\", got {_type_name(value)}")
    if isinstance(value, int):
        count = value
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"invalid size {value!r}: use bytes or a number with k, m or g")
        count = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    else:
        raise ValueError(f"expected a size such as \"10m\", got {_type_name(value)}")
    if count < 0:
        raise ValueError(f"size must not be negative, got {value!r}")
    return count


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_type_name(value)}")
    return value


def bool_or_auto(value: object) -> bool | str:
    """true | false | "auto"."""
    if isinstance(value, bool) or value == "auto":
        return value  # type: ignore[return-value]
    raise ValueError(f"expected true, false or \"auto\", got {value!r}")


def text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {_type_name(value)}")
    return value.strip()


def positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return value


def one_of(*choices: str):  # type: ignore[no-untyped-def]
    """A converter accepting only the given strings."""

    def convert(value: object) -> str:
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise ValueError(f"expected one of {listed}, got {value!r}")
        return str(value)

    return convert


def string_list(value: object, what: str = "string") -> tuple[str, ...]:
    """A list of strings, or one string standing for a list of one."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError(f"expected a {what} or a list of them, got {_type_name(value)}")
    out = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"expected a non-empty {what}, got {item!r}")
        out.append(item.strip())
    return tuple(out)


def split_host_port(address: str) -> tuple[str, int]:
    """"127.0.0.1:8080", "[::1]:8080", "localhost:80" → (host, port). Raises ValueError."""
    address = address.strip()
    if address.startswith("["):
        end = address.find("]")
        if end == -1 or address[end + 1 : end + 2] != ":":
            raise ValueError(f"invalid address {address!r}: expected \"[ipv6]:port\"")
        host, port_text = address[1:end], address[end + 2 :]
    else:
        host, colon, port_text = address.rpartition(":")
        if not colon or not host or ":" in host:
            raise ValueError(f"invalid address {address!r}: expected \"host:port\"")
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ValueError(f"invalid port in {address!r}: expected 0-65535")
    return host, int(port_text)


def address(value: object) -> str:
    """A listen address "host:port" (validated, kept as text)."""
    if not isinstance(value, str):
        raise ValueError(f"expected \"host:port\", got {_type_name(value)}")
    split_host_port(value)
    return value.strip()


def addresses(value: object) -> tuple[str, ...]:
    items = string_list(value, "\"host:port\" address")
    if not items:
        raise ValueError("expected at least one \"host:port\" address")
    return tuple(address(item) for item in items)


def admin_address(value: object) -> str | None:
    """An address, or false to disable the admin listener."""
    if value is False:
        return None
    return address(value)


def networks(value: object) -> tuple[str, ...]:
    """CIDRs ("10.0.0.0/8", "::1") normalised to their network form."""
    out = []
    for item in string_list(value, "CIDR"):
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"invalid network {item!r}: expected a CIDR such as 10.0.0.0/8") from None
    return tuple(out)


def backend(value: object) -> Backend:
    """"http://h:p", "https://h", "h:p" → Backend. A path is refused: use `dest` for that."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a backend URL such as \"http://127.0.0.1:3000\", got {value!r}")
    raw = value.strip()
    url = raw if "://" in raw else f"http://{raw}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid backend {raw!r}: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"invalid backend {raw!r}: scheme must be http or https")
    if not parts.hostname:
        raise ValueError(f"invalid backend {raw!r}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"invalid backend {raw!r}: no path allowed here, use `dest` to rewrite")
    if parts.username or parts.password:
        raise ValueError(f"invalid backend {raw!r}: credentials in the URL are not supported")
    return Backend(parts.hostname, port or _DEFAULT_PORTS[parts.scheme], parts.scheme)


def url_path(value: object) -> str:
    """A path prefix: must start with "/"."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"expected a path starting with \"/\", got {value!r}")
    if any(c.isspace() or ord(c) < 0x20 for c in value):
        raise ValueError(f"invalid path {value!r}: no spaces or control characters")
    return value
