"""run_docker_provider against the real engine: the snapshots it publishes as containers change."""

from __future__ import annotations

import threading

import pytest

from tests.docker.conftest import (
    DockerCli,
    ProviderThread,
    backends_of,
    host_of,
    site_for,
    started_at,
)
from vhostd.config.model import Config, DockerSettings
from vhostd.providers.docker.settings import docker_wanted

pytestmark = pytest.mark.docker


def test_started_container_is_routed_quickly_and_removed_when_gone(
    docker: DockerCli, image: str, provider: ProviderThread
) -> None:
    host = host_of(docker, "web")
    latencies = []
    for round_ in range(3):
        name = docker.run(f"web{round_}", image, {"VIRTUAL_HOST": host})
        stamp, snapshot = provider.wait_for(
            lambda s, n=name: backends_of(s, host) == [n], what="container routed"
        )
        latencies.append(stamp - started_at(docker, name))
        site = site_for(snapshot, host)
        assert site.source == f"docker:{name}"
        assert site.backends[0].address == (docker.ip(name), 80)
        docker("rm", "-f", name)
        provider.wait_for(lambda s: site_for(s, host) is None, what="route removed")
    print(
        f"start-to-routable latency (StartedAt → published): {[f'{x * 1000:.0f} ms' for x in latencies]}"
    )
    assert min(latencies) < 1.0  # the 100 ms target is measured, not asserted, here


def test_restart_with_a_new_ip_follows_the_new_address(
    docker: DockerCli, image: str, provider: ProviderThread
) -> None:
    host = host_of(docker, "moving")
    network = docker.network_with_subnet("net")
    name = docker.run("moving", image, {"VIRTUAL_HOST": host}, extra=("--network", network))
    first_ip = docker.ip(name, network)
    provider.wait_for(lambda s: site_for(s, host) is not None, what="routed")
    docker("stop", name)
    # A filler takes the freed address, so the restart must pick another one.
    docker.run("filler", image, extra=("--network", network, "--ip", first_ip))
    docker("start", name)
    second_ip = docker.ip(name, network)
    assert second_ip != first_ip
    _, snapshot = provider.wait_for(
        lambda s: [b.host for b in getattr(site_for(s, host), "backends", ())] == [second_ip],
        what="new address routed",
    )
    docker("restart", "-t", "1", name)
    provider.wait_for(
        lambda s: (
            backends_of(s, host) == [name]
            and site_for(s, host).backends[0].host == docker.ip(name, network)
        ),
        what="routed after docker restart",
    )


def test_replicas_share_a_site_and_a_stopping_one_leaves_before_it_exits(
    docker: DockerCli, image: str, provider: ProviderThread
) -> None:
    host = host_of(docker, "shop")
    slow = docker.run("shop-1", image, {"VIRTUAL_HOST": host, "STOP_DELAY": "2"})
    fast = docker.run("shop-2", image, {"VIRTUAL_HOST": host})
    provider.wait_for(lambda s: backends_of(s, host) == [slow, fast], what="both replicas")
    stopper = threading.Thread(target=docker, args=("stop", "-t", "10", slow))
    stopper.start()
    try:
        provider.wait_for(lambda s: backends_of(s, host) == [fast], what="stopping one out")
        # The kill event took it out of rotation while its server still runs (STOP_DELAY).
        assert docker("inspect", "-f", "{{.State.Running}}", slow) == "true"
    finally:
        stopper.join(timeout=30)
    docker("stop", "-t", "1", fast)
    provider.wait_for(lambda s: site_for(s, host) is None, what="all stopped")


def test_reload_signal_keeps_the_container_in_rotation(
    docker: DockerCli, image: str, provider: ProviderThread
) -> None:
    host = host_of(docker, "reload")
    name = docker.run("reload", image, {"VIRTUAL_HOST": host})
    provider.wait_for(lambda s: backends_of(s, host) == [name], what="routed")
    docker("kill", "-s", "HUP", name)  # PID 1 without a HUP handler: it keeps running
    # Events are handled in order: once the marker is routed, the HUP has been seen too.
    marker_host = host_of(docker, "marker")
    marker = docker.run("marker", image, {"VIRTUAL_HOST": marker_host})
    _, snapshot = provider.wait_for(lambda s: backends_of(s, marker_host) == [marker])
    assert backends_of(snapshot, host) == [name]


def test_invalid_declaration_is_reported_and_others_keep_working(
    docker: DockerCli, image: str, provider: ProviderThread
) -> None:
    good_host = host_of(docker, "good")
    bad = docker.run("bad", image, {"VIRTUAL_HOST": "no spaces.test", "VIRTUAL_PORT": "x"})
    good = docker.run("good", image, {"VIRTUAL_HOST": good_host})
    _, snapshot = provider.wait_for(
        lambda s: (
            backends_of(s, good_host) == [good]
            and any(p.where == f"container {bad}" for p in s.problems)
        ),
        what="problem reported",
    )
    [problem] = [p for p in snapshot.problems if p.where == f"container {bad}"]
    assert "invalid host" in problem.reason


def test_network_disconnect_unroutes_and_reconnect_routes_again(
    docker: DockerCli, image: str, provider: ProviderThread
) -> None:
    host = host_of(docker, "netted")
    network = docker.prefix + "net"
    docker("network", "create", network)
    name = docker.run("netted", image, {"VIRTUAL_HOST": host}, extra=("--network", network))
    provider.wait_for(lambda s: backends_of(s, host) == [name], what="routed")
    docker("network", "disconnect", network, name)
    _, snapshot = provider.wait_for(
        lambda s: (
            site_for(s, host) is None and any(p.where == f"container {name}" for p in s.problems)
        ),
        what="unrouted and reported",
    )
    docker("network", "connect", network, name)
    _, snapshot = provider.wait_for(lambda s: backends_of(s, host) == [name], what="routed again")
    assert site_for(snapshot, host).backends[0].host == docker.ip(name, network)


def test_healthcheck_pause_and_rename_are_followed(
    docker: DockerCli, image: str, provider: ProviderThread
) -> None:
    host = host_of(docker, "checked")
    name = docker.run(
        "checked",
        image,
        {"VIRTUAL_HOST": host},
        extra=("--health-cmd", "test -f /tmp/healthy", "--health-interval", "200ms"),
    )
    _, snapshot = provider.wait_for(lambda s: site_for(s, host) is not None, what="declared")
    assert site_for(snapshot, host).backends == ()
    docker("exec", name, "touch", "/tmp/healthy")
    _, snapshot = provider.wait_for(lambda s: backends_of(s, host) == [name], what="healthy")
    assert site_for(snapshot, host).backends[0].health == "healthy"
    docker("pause", name)
    provider.wait_for(lambda s: site_for(s, host) is None, what="paused out")
    docker("unpause", name)
    provider.wait_for(lambda s: backends_of(s, host) == [name], what="unpaused in")
    renamed = docker.prefix + "renamed"
    docker("rename", name, renamed)
    provider.wait_for(lambda s: backends_of(s, host) == [renamed], what="renamed")


def test_default_domain_routes_undeclared_containers(docker: DockerCli, image: str) -> None:
    config = Config(docker=DockerSettings(enabled=True, default_domain="localhost"))
    thread = ProviderThread(config).start()
    try:
        name = docker.run("plain", image)
        thread.wait_for(
            lambda s: backends_of(s, f"{name}.localhost") == [name], what="name.localhost"
        )
    finally:
        thread.stop()


def test_docker_wanted_follows_the_setting() -> None:
    missing = "unix:///nonexistent/docker.sock"
    assert docker_wanted(DockerSettings(enabled="auto", host=missing)) is False
    assert docker_wanted(DockerSettings(enabled=True, host=missing)) is True
    assert docker_wanted(DockerSettings(enabled=False)) is False
    assert docker_wanted(DockerSettings(enabled="auto", host="tcp://127.0.0.1:2375")) is True


def test_unreachable_daemon_publishes_nothing_and_keeps_retrying() -> None:
    config = Config(docker=DockerSettings(enabled=True, host="unix:///nonexistent/docker.sock"))
    thread = ProviderThread(config).start()
    try:
        with pytest.raises(AssertionError, match="timed out"):
            thread.wait_for(lambda s: True, timeout=0.5)
        assert thread._thread.is_alive()
    finally:
        thread.stop()


def test_in_a_container_only_shared_networks_are_used(
    docker: DockerCli, image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vhostd in a container (stood in for by one the test starts) reaches only its networks."""
    shared = docker.prefix + "shared"
    docker("network", "create", shared)
    stand_in = docker.run("vhostd", image, extra=("--network", shared))
    stand_in_id = docker("inspect", "-f", "{{.Id}}", stand_in)
    monkeypatch.setattr(
        "vhostd.providers.docker.watch.local_candidate_ids", lambda: [stand_in_id[:12]]
    )
    both_host, bridge_host = host_of(docker, "both"), host_of(docker, "bridged")
    both = docker.run("both", image, {"VIRTUAL_HOST": both_host})
    docker("network", "connect", shared, both)
    bridged = docker.run("bridged", image, {"VIRTUAL_HOST": bridge_host})
    thread = ProviderThread(Config(docker=DockerSettings(enabled=True))).start()
    try:
        _, snapshot = thread.wait_for(
            lambda s: (
                backends_of(s, both_host) == [both]
                and any(p.where == f"container {bridged}" for p in s.problems)
            ),
            what="shared-network address and a problem for the other",
        )
        assert site_for(snapshot, both_host).backends[0].host == docker.ip(both, shared)
        assert site_for(snapshot, bridge_host) is None
        # Joining vhostd's network makes it reachable, without any restart.
        docker("network", "connect", shared, bridged)
        thread.wait_for(lambda s: backends_of(s, bridge_host) == [bridged], what="joined")
    finally:
        thread.stop()
