"""providers/docker/build.py: tables of inspect dicts → expected sites and problems (no daemon)."""

from __future__ import annotations

from typing import Any

import pytest

from vhostd.config.model import AuthPolicy, Backend, Site
from vhostd.providers.docker.build import build, choose_address, declare
from vhostd.providers.snapshot import Problem


def container(
    name: str,
    env: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    *,
    ip: str = "172.17.0.2",
    networks: dict[str, str] | None = None,
    exposed: tuple[str, ...] = (),
    network_mode: str = "default",
    health: str | None = None,
    running: bool = True,
    paused: bool = False,
    cid: str | None = None,
) -> dict[str, Any]:
    """An inspect dict shaped like the Engine API's, with only the fields build() reads."""
    attached = networks if networks is not None else {"bridge": ip}
    state: dict[str, Any] = {"Running": running, "Paused": paused, "Restarting": False}
    if health is not None:
        state["Health"] = {"Status": health}
    return {
        "Id": cid or f"id-{name}",
        "Name": f"/{name}",
        "State": state,
        "Config": {
            "Env": [f"{k}={v}" for k, v in (env or {}).items()] + ["PATH=/bin"],
            "Labels": labels or {},
            "ExposedPorts": {port: {} for port in exposed},
        },
        "HostConfig": {"NetworkMode": network_mode},
        "NetworkSettings": {
            "IPAddress": attached.get("bridge", ""),
            "Networks": {net: {"IPAddress": addr} for net, addr in attached.items()},
        },
    }


def one_site(containers: list[dict[str, Any]], **kwargs: Any) -> Site:
    snapshot = build(containers, **kwargs)
    assert snapshot.problems == ()
    assert len(snapshot.sites) == 1, snapshot.sites
    return snapshot.sites[0]


def test_virtual_host_list_is_trimmed_and_routed_to_the_bridge_address() -> None:
    site = one_site([container("web", {"VIRTUAL_HOST": " www.zol.fr , zol.fr,, "})])
    assert site == Site(
        name="web",
        hosts=("www.zol.fr", "zol.fr"),
        backends=(Backend("172.17.0.2", 80, "http", "web", ""),),
        source="docker:web",
    )


@pytest.mark.parametrize(
    ("env", "labels", "exposed", "port"),
    [
        ({}, {}, (), 80),
        ({}, {}, ("8000/tcp",), 8000),
        ({}, {}, ("8000/tcp", "9000/tcp"), 80),
        ({}, {}, ("8000/tcp", "53/udp"), 8000),
        ({"VIRTUAL_PORT": "3000"}, {}, ("8000/tcp",), 3000),
        ({"VIRTUAL_PORT": "3000"}, {"vhostd.port": "4000"}, (), 4000),
    ],
)
def test_port_choice_explicit_then_single_exposed_then_80(
    env: dict[str, str], labels: dict[str, str], exposed: tuple[str, ...], port: int
) -> None:
    site = one_site([container("web", {"VIRTUAL_HOST": "a.test", **env}, labels, exposed=exposed)])
    assert site.backends[0].port == port


def test_path_dest_proto_and_auth_from_env_and_labels() -> None:
    site = one_site(
        [
            container(
                "api",
                {
                    "VIRTUAL_HOST": "a.test",
                    "VIRTUAL_PATH": "/api/",
                    "VIRTUAL_DEST": "/",
                    "VIRTUAL_PROTO": "HTTPS",
                },
                {"vhostd.auth": "htpasswd/a.test"},
            )
        ]
    )
    assert site.paths == ("/api/",)
    assert site.dest == "/"
    assert site.backends[0].scheme == "https"
    assert site.auth == AuthPolicy(file="htpasswd/a.test")


def test_labels_override_environment() -> None:
    site = one_site(
        [
            container(
                "web",
                {"VIRTUAL_HOST": "env.test", "VIRTUAL_PATH": "/env"},
                {"vhostd.host": "label.test", "vhostd.path": "/label"},
            )
        ]
    )
    assert (site.hosts, site.paths) == (("label.test",), ("/label",))


def test_wildcard_and_regex_hosts_are_kept_as_declared() -> None:
    site = one_site([container("w", {"VIRTUAL_HOST": "*.preprod.zol.fr,zol.*,~^atlive"})])
    assert site.hosts == ("*.preprod.zol.fr", "zol.*", "~^atlive")


@pytest.mark.parametrize(
    ("env", "labels", "reason"),
    [
        ({"VIRTUAL_HOST": "bad host.test"}, {}, "invalid host"),
        ({"VIRTUAL_HOST": "~(unclosed"}, {}, "invalid host regex"),
        ({"VIRTUAL_HOST": " , "}, {}, "no host"),
        ({"VIRTUAL_HOST": "a.test", "VIRTUAL_PORT": "http"}, {}, "not a number"),
        ({"VIRTUAL_HOST": "a.test", "VIRTUAL_PORT": "70000"}, {}, "out of range"),
        ({"VIRTUAL_HOST": "a.test", "VIRTUAL_PATH": "~^/api"}, {}, "must start with '/'"),
        ({"VIRTUAL_HOST": "a.test", "VIRTUAL_DEST": "x"}, {}, "must start with '/'"),
        ({"VIRTUAL_HOST": "a.test", "VIRTUAL_PROTO": "uwsgi"}, {}, "not supported"),
        ({"VIRTUAL_HOST": "a.test"}, {"vhostd.network": "missing"}, "no address"),
    ],
)
def test_invalid_declaration_is_reported_and_only_that_container_skipped(
    env: dict[str, str], labels: dict[str, str], reason: str
) -> None:
    good = container("good", {"VIRTUAL_HOST": "good.test"}, ip="172.17.0.3")
    snapshot = build([container("bad", env, labels), good])
    assert [site.name for site in snapshot.sites] == ["good"]
    assert len(snapshot.problems) == 1
    problem = snapshot.problems[0]
    assert problem.where == "container bad"
    assert reason in problem.reason


def test_undeclared_and_not_running_containers_are_ignored() -> None:
    snapshot = build(
        [
            container("db"),
            container("old", {"VIRTUAL_HOST": "a.test"}, running=False),
            container("frozen", {"VIRTUAL_HOST": "b.test"}, paused=True),
        ]
    )
    assert snapshot.sites == () and snapshot.problems == ()


def test_default_domain_makes_undeclared_containers_reachable() -> None:
    snapshot = build(
        [container("Blog", ip="172.17.0.5"), container("web", {"VIRTUAL_HOST": "w.test"})],
        default_domain="localhost",
    )
    assert [site.hosts for site in snapshot.sites] == [("blog.localhost",), ("w.test",)]


def test_replicas_with_the_same_host_are_one_site_with_one_backend_each() -> None:
    labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}
    site = one_site(
        [
            container("shop-web-2", {"VIRTUAL_HOST": "shop.test"}, labels, ip="172.17.0.3"),
            container("shop-web-1", {"VIRTUAL_HOST": "shop.test"}, labels, ip="172.17.0.2"),
        ]
    )
    assert site.name == "shop-web"
    assert site.source == "docker:shop-web-1,shop-web-2"
    assert [(b.host, b.label) for b in site.backends] == [
        ("172.17.0.2", "shop-web-1"),
        ("172.17.0.3", "shop-web-2"),
    ]


def test_partly_overlapping_host_lists_share_only_the_common_host() -> None:
    snapshot = build(
        [
            container("a", {"VIRTUAL_HOST": "both.test,a.test"}, ip="172.17.0.2"),
            container("b", {"VIRTUAL_HOST": "both.test"}, ip="172.17.0.3"),
        ]
    )
    assert snapshot.problems == ()
    by_host = {site.hosts: [b.label for b in site.backends] for site in snapshot.sites}
    assert by_host == {("a.test",): ["a"], ("both.test",): ["a", "b"]}
    assert len({site.name for site in snapshot.sites}) == 2


def test_same_host_on_different_paths_are_separate_sites() -> None:
    snapshot = build(
        [
            container("front", {"VIRTUAL_HOST": "a.test"}, ip="172.17.0.2"),
            container("api", {"VIRTUAL_HOST": "a.test", "VIRTUAL_PATH": "/api"}, ip="172.17.0.3"),
        ]
    )
    assert [(s.name, s.paths) for s in snapshot.sites] == [("front", ("/",)), ("api", ("/api",))]


def test_replicas_disagreeing_on_dest_keep_the_first_and_report() -> None:
    snapshot = build(
        [
            container("a", {"VIRTUAL_HOST": "x.test", "VIRTUAL_DEST": "/one"}),
            container("b", {"VIRTUAL_HOST": "x.test", "VIRTUAL_DEST": "/two"}, ip="172.17.0.3"),
        ]
    )
    assert snapshot.sites[0].dest == "/one"
    assert len(snapshot.sites[0].backends) == 2
    assert [p.where for p in snapshot.problems] == ["container b"]


def test_stopping_container_leaves_rotation_at_once() -> None:
    replicas = [
        container("a", {"VIRTUAL_HOST": "x.test"}, cid="aaa", ip="172.17.0.2"),
        container("b", {"VIRTUAL_HOST": "x.test"}, cid="bbb", ip="172.17.0.3"),
    ]
    site = one_site(replicas, stopping=frozenset({"aaa"}))
    assert [b.label for b in site.backends] == ["b"]
    alone = one_site(replicas[:1], stopping=frozenset({"aaa"}))
    assert alone.backends == () and alone.unavailable_reason == "container stopping"


@pytest.mark.parametrize(
    ("health", "require_healthy", "routed"),
    [
        ("healthy", True, True),
        ("starting", True, False),
        ("unhealthy", True, False),
        ("unhealthy", False, True),
        (None, True, True),
    ],
)
def test_healthchecked_containers_get_traffic_only_while_healthy(
    health: str | None, require_healthy: bool, routed: bool
) -> None:
    site = one_site(
        [container("h", {"VIRTUAL_HOST": "h.test"}, health=health)],
        require_healthy=require_healthy,
    )
    assert bool(site.backends) is routed
    if routed:
        assert site.backends[0].health == (health or "")
    else:
        assert site.unavailable_reason == f"container {health}"


@pytest.mark.parametrize(
    ("networks", "mode", "label", "own", "expected"),
    [
        ({"bridge": "172.17.0.2", "app": "172.20.0.2"}, "default", None, None, "172.17.0.2"),
        ({"app": "172.20.0.2", "zz": "172.21.0.2"}, "app", None, None, "172.20.0.2"),
        ({"bridge": "172.17.0.2", "app": "172.20.0.2"}, "default", "app", None, "172.20.0.2"),
        ({"bridge": "172.17.0.2", "app": "172.20.0.2"}, "default", None, {"app"}, "172.20.0.2"),
        ({}, "host", None, None, "127.0.0.1"),
    ],
)
def test_address_choice(
    networks: dict[str, str], mode: str, label: str | None, own: set[str] | None, expected: str
) -> None:
    inspect = container("c", networks=networks, network_mode=mode)
    shared = frozenset(own) if own is not None else None
    assert choose_address(inspect, label, shared) == expected


@pytest.mark.parametrize(
    ("networks", "mode", "label", "own", "reason"),
    [
        ({}, "none", None, None, "no usable network address"),
        ({"bridge": "172.17.0.2"}, "default", None, {"app"}, "shares no network"),
        ({"app": "172.20.0.2"}, "default", "app", {"other"}, "not shared with vhostd"),
        ({"bridge": ""}, "default", None, None, "no usable network address"),
    ],
)
def test_unreachable_container_is_reported_not_routed(
    networks: dict[str, str], mode: str, label: str | None, own: set[str] | None, reason: str
) -> None:
    labels = {"vhostd.network": label} if label else {}
    inspect = container(
        "c", {"VIRTUAL_HOST": "c.test"}, labels, networks=networks, network_mode=mode
    )
    inspect["NetworkSettings"]["IPAddress"] = ""
    shared = frozenset(own) if own is not None else None
    snapshot = build([inspect], own_networks=shared)
    assert snapshot.sites == ()
    assert snapshot.problems[0].where == "container c"
    assert reason in snapshot.problems[0].reason


def test_host_network_container_uses_loopback_and_its_declared_port() -> None:
    site = one_site(
        [
            container(
                "h",
                {"VIRTUAL_HOST": "h.test", "VIRTUAL_PORT": "8099"},
                network_mode="host",
                networks={},
            )
        ]
    )
    assert site.backends[0].address == ("127.0.0.1", 8099)


def test_own_container_is_never_routed() -> None:
    snapshot = build([container("vhostd", cid="me")], default_domain="localhost", own_id="me")
    assert snapshot.sites == ()


def test_same_containers_in_any_order_give_an_equal_snapshot() -> None:
    items = [
        container(f"c{i}", {"VIRTUAL_HOST": f"h{i % 3}.test"}, ip=f"172.17.0.{i + 2}")
        for i in range(7)
    ]
    assert build(items) == build(list(reversed(items)))


def test_declare_returns_none_for_undeclared() -> None:
    assert declare(container("db")) is None
    assert Problem("container x", "y").where == "container x"
