"""Host patterns and host normalisation (pure).

Pattern kinds, as nginx and nginx-proxy write them:
  exact     www.zol.fr
  leading   *.preprod.zol.fr   (any host ending in ".preprod.zol.fr")
  trailing  zol.*              (any host starting with "zol.")
  regex     ~^atlive           (re.search on the normalised host)
Comparison ignores case, a trailing dot and the port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EXACT, LEADING, TRAILING, REGEX = "exact", "leading", "trailing", "regex"

_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")


@dataclass(frozen=True, slots=True)
class HostPattern:
    text: str  # as declared
    kind: str
    key: str  # exact host, ".suffix", "prefix." or the regex source
    regex: re.Pattern[str] | None = None

    def matches(self, host: str) -> bool:
        if self.kind == EXACT:
            return host == self.key
        if self.kind == LEADING:
            return host.endswith(self.key) and len(host) > len(self.key)
        if self.kind == TRAILING:
            return host.startswith(self.key) and len(host) > len(self.key)
        assert self.regex is not None
        return self.regex.search(host) is not None


def normalize_host(raw: str) -> str:
    """Lower-case, without port and trailing dot: "WWW.Zol.fr.:8080" → "www.zol.fr"."""
    host = raw.strip().lower()
    if host.startswith("["):  # IPv6 literal, maybe with a port
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    colon = host.rfind(":")
    if colon != -1 and host.count(":") == 1:
        host = host[:colon]
    return host.rstrip(".")


def _check_labels(name: str, text: str) -> None:
    if not name or len(name) > 253:
        raise ValueError(f"invalid host {text!r}: empty or too long")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise ValueError(f"invalid host {text!r}: bad label {label!r}")


def parse_host_pattern(text: str) -> HostPattern:
    """Classify a declared host; raises ValueError with a readable reason."""
    declared = text.strip()
    if not declared:
        raise ValueError("empty host")
    if declared.startswith("~"):
        source = declared[1:]
        try:
            compiled = re.compile(source, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"invalid host regex {declared!r}: {exc}") from None
        return HostPattern(declared, REGEX, source, compiled)
    name = normalize_host(declared)
    if name.startswith("*."):
        _check_labels(name[2:], declared)
        return HostPattern(declared, LEADING, name[1:])
    if name.endswith(".*"):
        _check_labels(name[:-2], declared)
        return HostPattern(declared, TRAILING, name[:-1])
    if "*" in name:
        raise ValueError(f"invalid host {declared!r}: '*' only as the first or last label")
    if name.startswith("[") and name.endswith("]"):
        return HostPattern(declared, EXACT, name)
    _check_labels(name, declared)
    return HostPattern(declared, EXACT, name)
