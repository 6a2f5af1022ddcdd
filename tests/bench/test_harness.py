"""The benchmark harness end to end on loopback: real nginx origin, nginx proxy, vhostd, wrk."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.lab import Lab, Target
from bench.throughput import REQUEST_PATHS, LoadSettings, add_ratios, run_throughput
from bench.tools import Tools, find_program
from bench.wrk import request_script

from bench import configs, memory, route_change, scaling


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


@pytest.mark.parametrize("request_kind", sorted(REQUEST_PATHS))
def test_every_target_serves_wrk_load_without_errors(
    lab: Lab, tmp_path: Path, request_kind: str
) -> None:
    """For each --request: the origin answers /form only to a POST, so a bench that did not
    post as asked counts errors."""
    size, path = next(iter(REQUEST_PATHS[request_kind].items()))
    origin = lab.start_origin()
    nginx = lab.start_nginx()
    vhostd, vhostd_auth = lab.start_vhostd()
    targets: list[Target] = [origin, nginx, vhostd, vhostd_auth]
    script = str(request_script(request_kind, tmp_path))
    load = LoadSettings(duration_s=1, warmup_s=0, repeats=1, connections=8, script=script)
    summary = run_throughput(
        targets,
        load,
        lab.tools.wrk,
        None,
        tmp_path / "wrk.txt",
        progress=False,
        sizes={size: path},
    )
    add_ratios(summary, "nginx")
    for target in targets:
        figures = summary[target.name][size]
        assert figures["requests"] > 0, target.name
        assert figures["errors"] == 0, target.name
    assert summary["nginx"][size]["ratio_to_nginx"] == 1.0
    assert "Host: auth.bench.local" in (tmp_path / "wrk.txt").read_text()


def test_the_form_path_refuses_anything_but_a_post(lab: Lab, tmp_path: Path) -> None:
    origin = lab.start_origin()
    get = request_script("get", tmp_path)
    load = LoadSettings(duration_s=1, warmup_s=0, repeats=1, connections=2, script=str(get))
    summary = run_throughput(
        [origin], load, lab.tools.wrk, None, tmp_path / "wrk.txt", progress=False,
        sizes={"12B": REQUEST_PATHS["post"]["12B"]},
    )  # fmt: skip
    assert summary["origin"]["12B"]["errors"] == summary["origin"]["12B"]["requests"] > 0


def test_the_chunked_page_comes_in_three_chunks(lab: Lab) -> None:
    """What `--request chunked` measures: nginx's SSI filter sends the page chunked, split
    at its include."""
    origin = lab.start_origin()
    with socket.create_connection(("127.0.0.1", origin.port), timeout=5) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: bench.local\r\nConnection: close\r\n\r\n"
                     % configs.CHUNKED_PATH.encode())  # fmt: skip
        received = b""
        while data := sock.recv(65536):
            received += data
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    sizes = []
    while (size := int(body[: body.index(b"\r\n")], 16)) > 0:
        sizes.append(size)
        body = body[body.index(b"\r\n") + 2 + size + 2 :]
    assert len(sizes) == 3 and sizes[1] == len(b"<p>part</p>\n") and sum(sizes) > 3000


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


def test_idle_wakeups_tell_a_sleeper_from_a_ticker() -> None:
    sleeper = "import sys; print('up', flush=True); sys.stdin.read()"
    # a thread that ticks 100 times a second, as a polling watcher does, beside a main thread
    ticker = "import threading, time, sys\n" + (
        "threading.Thread(target=lambda: [time.sleep(0.01) for _ in iter(int, 1)], daemon=True)"
        ".start(); print('up', flush=True); sys.stdin.read()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for code in (sleeper, ticker)
    ]
    try:
        for proc in procs:  # started up: what is counted now is idling only
            assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
        targets = [Target("sleeper", 0, procs[0]), Target("ticker", 0, procs[1])]
        rates = memory.idle_wakeups_per_s(targets, 1.0)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert rates["sleeper"] < 5
    assert 50 < rates["ticker"] < 150


def _quota_groups_or_skip() -> scaling.QuotaGroups:
    try:
        return scaling.QuotaGroups(0.1)
    except OSError as error:
        pytest.skip(f"no CPU quotas here: {error}")


def test_a_quota_group_holds_a_busy_process_to_its_share() -> None:
    groups = _quota_groups_or_skip()
    spin = "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass"
    busy = subprocess.Popen([sys.executable, "-c", spin])
    try:
        groups.confine(busy.pid)
        _pid, status, used = os.wait4(busy.pid, 0)  # this child's CPU alone
        busy.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if busy.returncode is None:
            busy.kill()
            busy.wait()
        groups.close()
    assert busy.returncode == 0
    # A whole second of spinning, allowed a tenth of a core: far less than the second.
    assert used.ru_utime + used.ru_stime < 0.5
    assert not groups.groups and not any(
        path.name.startswith(f"vhostd-bench-{os.getpid()}-") for path in groups.root.iterdir()
    )


def test_worker_scaling_confines_each_worker_of_each_count(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _quota_groups_or_skip().close()
    confined: dict[int, str] = {}  # pid → its cgroup line for the cpu controller, once confined
    original = scaling.QuotaGroups.confine

    def confine_and_look(groups: scaling.QuotaGroups, pid: int) -> None:
        original(groups, pid)
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        confined[pid] = next(line for line in lines if "vhostd-bench-" in line)

    monkeypatch.setattr(scaling.QuotaGroups, "confine", confine_and_look)
    lab.start_origin()
    load = LoadSettings(duration_s=1, warmup_s=0, repeats=1, connections=8)
    result = scaling.worker_scaling(
        lab, load, lab.tools.wrk, None, tmp_path / "wrk.txt", counts=(1, 2)
    )
    assert len(confined) == 3  # one worker, then two, each in a group of its own
    assert len({line.rsplit("/", 1)[-1] for line in confined.values()}) == 3
    assert set(result["workers"]) == {"1", "2"}
    assert all(value["requests_per_s"] > 0 for value in result["workers"].values())
    # The vhostds it started are gone, and with them their groups.
    found = scaling.quota_hierarchy()
    assert found is not None
    assert not any(
        path.name.startswith(f"vhostd-bench-{os.getpid()}-") for path in found[0].iterdir()
    )


def test_worker_pids_are_the_forked_workers(lab: Lab) -> None:
    lab.start_origin()
    one, _auth = lab.start_vhostd(workers=1, name="vhostd-one")
    two, _auth = lab.start_vhostd(workers=2, name="vhostd-two")
    assert one.proc is not None and two.proc is not None
    assert scaling.worker_pids(one) == [one.proc.pid]
    workers = scaling.worker_pids(two)
    assert len(workers) == 2 and two.proc.pid not in workers
