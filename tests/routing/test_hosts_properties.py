"""Property tests for host patterns and route-table precedence (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vhostd.config.model import Backend, Site
from vhostd.providers.snapshot import Snapshot
from vhostd.routing.hosts import normalize_host, parse_host_pattern
from vhostd.routing.merge import merge
from vhostd.routing.table import RouteTable, compile_table

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
# a DNS label: letters and digits, sometimes with an inner hyphen
LABEL = st.tuples(
    st.text(_ALNUM, min_size=1, max_size=6), st.sampled_from(["", "-"]), st.text(_ALNUM, max_size=4)
).map(lambda t: t[0] + (t[1] + t[2] if t[2] else ""))
HOST = st.lists(LABEL, min_size=2, max_size=5).map(".".join)
PATH = st.lists(st.text("abc01", min_size=1, max_size=3), min_size=0, max_size=3).map(
    lambda parts: "/" + "/".join(parts)
)
KINDS = ("exact", "leading", "trailing", "regex", "default")


def table_of(*sites: Site) -> RouteTable:
    return compile_table(merge({"file": Snapshot("file", sites)}).sites)


def site(name: str, *hosts: str, default: bool = False, paths: tuple[str, ...] = ("/",)) -> Site:
    return Site(name, hosts, (Backend("127.0.0.1", 1),), paths=paths, default=default, source=name)


def variants(host: str) -> st.SearchStrategy[str]:
    """The same host as a client may send it: any case, a port, a trailing dot."""
    return st.tuples(
        st.sampled_from([str.lower, str.upper, str.title]),
        st.sampled_from(["", "."]),
        st.sampled_from(["", ":80", ":8080"]),
    ).map(lambda v: v[0](host) + v[1] + v[2])


@given(st.data(), HOST)
def test_normalize_ignores_case_port_and_trailing_dot(data: st.DataObject, host: str) -> None:
    sent = data.draw(variants(host))
    assert normalize_host(sent) == host
    assert normalize_host(normalize_host(sent)) == host


@given(st.data(), HOST)
def test_exact_host_found_however_it_is_sent(data: st.DataObject, host: str) -> None:
    table = table_of(site("a", host))
    route = table.route(data.draw(variants(host)).encode(), b"/")
    assert route is not None and route.site.name == "a"


@given(LABEL, HOST)
def test_leading_wildcard_matches_subdomains_only(label: str, suffix: str) -> None:
    pattern = parse_host_pattern(f"*.{suffix}")
    assert pattern.matches(f"{label}.{suffix}")
    assert pattern.matches(f"{label}.{label}.{suffix}")
    assert not pattern.matches(suffix)
    assert not pattern.matches(f"{label}{suffix}")


@given(LABEL, HOST)
def test_trailing_wildcard_matches_any_tld(label: str, prefix: str) -> None:
    pattern = parse_host_pattern(f"{prefix}.*")
    assert pattern.matches(f"{prefix}.{label}")
    assert not pattern.matches(prefix)
    assert not pattern.matches(f"x{prefix}.{label}")


@settings(max_examples=200)
@given(
    st.lists(LABEL, min_size=3, max_size=4).map(".".join),
    st.lists(st.sampled_from(KINDS), min_size=1, unique=True),
    st.permutations(range(5)),
)
def test_precedence_exact_leading_trailing_regex_default(
    host: str, kinds: list[str], order: list[int]
) -> None:
    first, rest = host.split(".", 1)
    pattern_for = {
        "exact": host,
        "leading": f"*.{rest}",
        "trailing": f"{host.rsplit('.', 1)[0]}.*",
        "regex": f"~^{first}",
    }
    sites = []
    for index in order:  # declaration order must not matter across kinds
        kind = KINDS[index]
        if kind not in kinds:
            continue
        if kind == "default":
            sites.append(site("default", "fallback.invalid", default=True))
        else:
            sites.append(site(kind, pattern_for[kind]))
    route = table_of(*sites).route(host.encode(), b"/")
    expected = next(kind for kind in KINDS if kind in kinds)
    assert route is not None
    assert route.site.name == expected


@given(st.lists(LABEL, min_size=4, max_size=5, unique=True))
def test_longest_leading_wildcard_wins(labels: list[str]) -> None:
    host = ".".join(labels)
    suffixes = [".".join(labels[i:]) for i in range(1, len(labels) - 1)]
    table = table_of(*(site(f"s{i}", f"*.{s}") for i, s in enumerate(reversed(suffixes))))
    route = table.route(host.encode(), b"/")
    assert route is not None and route.host == f"*.{suffixes[0]}"


@given(LABEL, st.data())
def test_regexes_in_declared_order(label: str, data: st.DataObject) -> None:
    # distinct regexes that all match the host: whichever is declared first wins
    regexes = [f"~^{label}\\.", f"~{label}", "~\\.test$", "~.", f"~^{label}\\.test$"]
    declared = data.draw(st.permutations(regexes))
    table = table_of(*(site(f"r{i}", text) for i, text in enumerate(declared)))
    route = table.route(f"{label}.test".encode(), b"/")
    assert route is not None and route.site.name == "r0" and route.host == declared[0]


@given(HOST, st.lists(PATH, min_size=1, max_size=6, unique=True), PATH, PATH)
def test_longest_path_prefix_wins(host: str, paths: list[str], target: str, tail: str) -> None:
    table = table_of(*(site(f"p{i}", host, paths=(p,)) for i, p in enumerate(paths)))
    request = (target + tail).encode()
    route = table.route(host.encode(), request)
    matching = [p for p in paths if request.startswith(p.encode())]
    if not matching:
        assert route is None
    else:
        assert route is not None and route.prefix == max(matching, key=len).encode()


@given(HOST)
def test_unknown_host_without_default_is_none(host: str) -> None:
    table = table_of(site("a", f"x{host}"))
    assert table.route(host.encode(), b"/") is None
