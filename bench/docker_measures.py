"""Docker-backed measurements: container start → first 200, and rolling restarts under load.

vhostd (docker provider) and Traefik (docker provider) follow the same containers, built from
the tests' local busybox responder image. Every container carries this run's name prefix
and label and is removed at the end.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import configs
from bench.lab import GO_ENV, Lab, Target
from bench.processes import free_port, pinned, wait_for_status
from bench.route_change import POLL_PAUSE_S, Poller
from bench.tools import Tools
from bench.wrk import parse_report, wrk_command

ROLL_HOST = "roll.bench.local"
SETTLE_AFTER_READY_S = 3.0  # rolling-update pause once a replica serves (> Traefik's 2 s throttle)
STOP_DELAY_S = 1  # replicas keep serving this long after SIGTERM, like a draining server
ROLL_LOAD_CONNECTIONS = 16
MAX_ROLL_LOAD_S = 120  # upper bound only: wrk is interrupted when the roll is over


class Containers:
    """Containers this run created; `remove_all()` deletes them."""

    def __init__(self, docker: str, image: str, run_label: str) -> None:
        self.docker, self.image, self.run_label = docker, image, run_label
        self.names: list[str] = []

    def run(self, name: str, host: str) -> str:
        router = name.replace(".", "-")
        argv = [
            self.docker,
            "run",
            "-d",
            "--name",
            name,
            "-e",
            f"VIRTUAL_HOST={host}",
            "-e",
            "VIRTUAL_PORT=80",
            "-e",
            f"STOP_DELAY={STOP_DELAY_S}",
            "--label",
            f"vhostd-bench={self.run_label}",
            "--label",
            "traefik.enable=true",
            "--label",
            f"traefik.http.routers.{router}.rule=Host(`{host}`)",
            "--label",
            f"traefik.http.services.{router}.loadbalancer.server.port=80",
            self.image,
        ]
        self.names.append(name)
        subprocess.run(argv, check=True, capture_output=True)
        return name

    def ip(self, name: str) -> str:
        out = subprocess.run(
            [
                self.docker,
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                name,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def remove_all(self) -> None:
        if self.names:
            subprocess.run([self.docker, "rm", "-f", *self.names], capture_output=True, check=False)
            self.names.clear()


def _responder_image(docker: str) -> str:
    from tests.support.docker_images import responder_image

    return responder_image((docker,))


def _wait_direct(ip: str, timeout: float = 15.0) -> None:
    """Until the container itself answers on port 80 (its own address, created by us)."""
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(ip, 80, timeout=1)
        try:
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.02)
    raise RuntimeError(f"container at {ip} did not serve within {timeout}s")


def start_traefik_docker(lab: Lab, tools: Tools, run_label: str) -> Target:
    port = free_port()
    conf = configs.render_template(
        "traefik-docker.yml", lab.run_dir, {"port": port, "run_label": run_label}
    )
    proc = lab._spawn("traefik-docker", [tools.traefik, f"--configFile={conf}"], GO_ENV)
    return Target("traefik", port, proc)


def container_start_latency(
    containers: Containers, proxies: list[Target], repeats: int, timeout: float = 10.0
) -> dict[str, Any]:
    """`docker run` → first 200 through each proxy (polled in turn, 1 ms apart).

    `after_run_ms` subtracts the time `docker run` took to create and start the container,
    which no proxy can shorten.
    """
    totals: dict[str, list[float]] = {p.name: [] for p in proxies}
    after_run: dict[str, list[float]] = {p.name: [] for p in proxies}
    run_seconds: list[float] = []
    for index in range(repeats):
        host = f"start-{index}.{containers.run_label}.bench.local"
        pollers = {p.name: Poller(p.port, host, "/") for p in proxies}
        started = time.monotonic()
        containers.run(f"{containers.run_label}-start-{index}", host)
        ran = time.monotonic() - started
        run_seconds.append(ran)
        pending = dict(pollers)
        deadline = started + timeout
        while pending and time.monotonic() < deadline:
            for name, poller in list(pending.items()):
                if poller.status() == 200:
                    elapsed = time.monotonic() - started
                    totals[name].append(elapsed * 1000)
                    after_run[name].append((elapsed - ran) * 1000)
                    del pending[name]
            time.sleep(POLL_PAUSE_S)
        for poller in pollers.values():
            poller.close()
    result: dict[str, Any] = {
        "samples": repeats,
        "docker_run_median_ms": round(statistics.median(run_seconds) * 1000, 1),
    }
    for name, values in totals.items():
        result[name] = {
            "missed": repeats - len(values),
            "median_ms": round(statistics.median(values), 1) if values else None,
            "max_ms": round(max(values), 1) if values else None,
            "after_run_median_ms": (
                round(statistics.median(after_run[name]), 1) if values else None
            ),
        }
    return result


def rolling_restart(
    containers: Containers,
    proxy: Target,
    replicas: list[str],
    tools: Tools,
    wrk_cpus: str | None,
) -> dict[str, Any]:
    """wrk through `proxy` while each replica is stopped, started again and given time.

    wrk gets a generous -d and is stopped with SIGINT (it then reports as usual) one second
    after the last replica settled, so the load covers exactly the whole roll.
    """
    argv = wrk_command(
        tools.wrk, proxy.port, "/", ROLL_HOST, MAX_ROLL_LOAD_S, ROLL_LOAD_CONNECTIONS
    )
    load = subprocess.Popen(
        pinned(argv, wrk_cpus, tools.taskset),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    roll_started = time.monotonic()
    try:
        time.sleep(1.0)  # steady load before the first stop
        for name in replicas:
            subprocess.run(
                [containers.docker, "stop", "-t", "10", name], check=True, capture_output=True
            )
            subprocess.run([containers.docker, "start", name], check=True, capture_output=True)
            _wait_direct(containers.ip(name))
            time.sleep(SETTLE_AFTER_READY_S)
        roll_seconds = time.monotonic() - roll_started
        time.sleep(1.0)
        load.send_signal(signal.SIGINT)
        output, _ = load.communicate(timeout=30)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    result = parse_report(output)
    return {
        "requests": result.requests,
        "failed": result.errors,
        "non_2xx": result.status_errors,
        "roll_seconds": round(roll_seconds, 1),
    }


def run_all(
    tools: Tools,
    run_dir: Path,
    proxy_cpus: str | None,
    wrk_cpus: str | None,
    roll_rounds: int = 2,
) -> dict[str, Any]:
    """Both Docker measurements; a failure is reported in the result, not raised."""
    assert tools.docker is not None
    run_label = f"vhbench{os.getpid()}"
    results: dict[str, Any] = {
        "image": "",
        "settle_after_ready_s": SETTLE_AFTER_READY_S,
        "stop_delay_s": STOP_DELAY_S,
    }
    try:
        image = _responder_image(tools.docker)
    except Exception as error:  # noqa: BLE001 - report why Docker figures are missing
        return {"error": f"no test image: {error}"}
    results["image"] = image
    containers = Containers(tools.docker, image, run_label)
    with Lab(tools, run_dir / "docker", proxy_cpus) as lab:
        try:
            lab.start_origin()  # vhostd's static sites point at it; readiness checks use them
            vhostd, _auth = lab.start_vhostd(docker=True, name="vhostd-docker")
            vhostd.name = "vhostd"
            traefik = start_traefik_docker(lab, tools, run_label)
            results["container_start"] = container_start_latency(
                containers, [vhostd, traefik], repeats=5
            )
            replicas = [containers.run(f"{run_label}-roll-{i}", ROLL_HOST) for i in (1, 2)]
            for proxy in (vhostd, traefik):
                wait_for_status(proxy.port, ROLL_HOST, "/", proxy.proc, timeout=15)
            time.sleep(SETTLE_AFTER_READY_S)  # both replicas in every proxy's rotation
            rolls: dict[str, list[dict[str, Any]]] = {vhostd.name: [], traefik.name: []}
            for _round in range(roll_rounds):  # interleaved: vhostd, traefik, vhostd, ...
                for proxy in (vhostd, traefik):
                    rolls[proxy.name].append(
                        rolling_restart(containers, proxy, replicas, tools, wrk_cpus)
                    )
            results["rolling_restart"] = {
                name: {
                    "rounds": len(runs),
                    "failed_total": sum(r["failed"] for r in runs),
                    "requests_total": sum(r["requests"] for r in runs),
                    "failed_per_round": [r["failed"] for r in runs],
                    "roll_seconds_median": statistics.median(r["roll_seconds"] for r in runs),
                }
                for name, runs in rolls.items()
            }
        except (RuntimeError, OSError, subprocess.CalledProcessError, ValueError) as error:
            results["error"] = str(error)
        finally:
            containers.remove_all()
    return results
