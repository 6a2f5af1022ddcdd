"""The benchmark harness end to end on loopback: real nginx origin, nginx proxy, vhostd, wrk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.lab import Lab, Target
from bench.throughput import LoadSettings, add_ratios, run_throughput
from bench.tools import Tools, find_program

from bench import memory, route_change


def _tools() -> Tools:
    needed = {name: find_program(name) for name in ("wrk", "nginx", "vhostd")}
    missing = [name for name, path in needed.items() if path is None]
    if missing:
        pytest.skip(f"missing {missing}: run `bash scripts/ensure-system.sh`")
    return Tools(
        wrk=needed["wrk"] or "",
        nginx=needed["nginx"] or "",
        haproxy="",
        caddy="",
        htpasswd=find_program("htpasswd") or "",
        taskset=None,
        traefik="",
        py_spy=None,
        vhostd=needed["vhostd"] or "",
        docker=None,
    )


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(_tools(), tmp_path / "run") as running:
        yield running


def test_every_target_serves_wrk_load_without_errors(lab: Lab, tmp_path: Path) -> None:
    origin = lab.start_origin()
    nginx = lab.start_nginx()
    vhostd, vhostd_auth = lab.start_vhostd()
    targets: list[Target] = [origin, nginx, vhostd, vhostd_auth]
    load = LoadSettings(duration_s=1, warmup_s=0, repeats=1, connections=8)
    summary = run_throughput(
        targets,
        load,
        lab.tools.wrk,
        None,
        tmp_path / "wrk.txt",
        progress=False,
        sizes=("12B",),
    )
    add_ratios(summary, "nginx")
    for target in targets:
        figures = summary[target.name]["12B"]
        assert figures["requests"] > 0, target.name
        assert figures["errors"] == 0, target.name
    assert summary["nginx"]["12B"]["ratio_to_nginx"] == 1.0
    assert "Host: auth.bench.local" in (tmp_path / "wrk.txt").read_text()


def test_auth_host_refuses_wrong_credentials(lab: Lab) -> None:
    from bench.processes import http_status

    lab.start_origin()
    _vhostd, vhostd_auth = lab.start_vhostd()
    assert http_status(vhostd_auth.port, vhostd_auth.host, "/small") == 401
    assert http_status(vhostd_auth.port, vhostd_auth.host, "/small", vhostd_auth.headers) == 200


def test_route_change_and_idle_connection_memory(lab: Lab) -> None:
    lab.start_origin()
    vhostd, _auth = lab.start_vhostd()
    latency = route_change.file_route_latency(
        vhostd.port, lab.run_dir / "vhostd-sites.d", lab.origin_port, repeats=2
    )
    assert latency["missed"] == 0 and latency["median_ms"] is not None
    held = memory.measure_held_connections(vhostd, 200)
    assert held["connections_held"] == 200
    assert held["rss_with_connections_mib"] > 0
