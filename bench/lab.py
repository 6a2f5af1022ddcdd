"""The origin and every proxy in front of it, started from rendered configs.

`Lab` owns a run directory and the processes it started; `close()` stops them all. Each
`start_*` returns a `Target`: where wrk points, with which Host and headers.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import configs
from bench.processes import free_port, pinned, start, stop, wait_for_status
from bench.tools import Tools

AUTH_USER = "bench"
AUTH_PASSWORD = "bench-password-1234"
GO_ENV = {"GOMAXPROCS": "1"}  # one core for the Go proxies, as one worker for the others


@dataclass
class Target:
    """Something wrk can load: a port, the Host to send, extra headers, its process."""

    name: str
    port: int
    proc: subprocess.Popen[bytes] | None
    host: str = configs.BENCH_HOST
    headers: dict[str, str] = field(default_factory=dict)
    admin_port: int | None = None


class Lab:
    """Starts the origin and proxies on free loopback ports; stops them on close()."""

    def __init__(
        self,
        tools: Tools,
        run_dir: Path,
        proxy_cpus: str | None = None,
        origin_cpus: str | None = None,
    ) -> None:
        self.tools = tools
        self.run_dir = run_dir
        self.proxy_cpus = proxy_cpus  # taskset list for proxies, None = unpinned
        # the origin belongs to the load side: on wrk's core it cannot preempt the proxy
        self.origin_cpus = origin_cpus
        self.origin_port = 0
        self._procs: list[subprocess.Popen[bytes]] = []
        run_dir.mkdir(parents=True, exist_ok=True)

    # -- lifecycle -------------------------------------------------------------------------

    def _spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        pin: bool = True,
        cpus: str | None = None,
    ) -> subprocess.Popen[bytes]:
        cpus = cpus if cpus is not None else (self.proxy_cpus if pin else None)
        proc = start(pinned(argv, cpus, self.tools.taskset), self.run_dir / f"{name}.log", env)
        self._procs.append(proc)
        return proc

    def stop_target(self, target: Target) -> None:
        """Stop one target's process (e.g. before measuring the next one's memory)."""
        if target.proc is not None:
            stop(target.proc)
            if target.proc in self._procs:
                self._procs.remove(target.proc)

    def close(self) -> None:
        for proc in reversed(self._procs):
            stop(proc)
        self._procs.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _values(self, port: int, **extra: object) -> dict[str, object]:
        return {
            "port": port,
            "origin_port": self.origin_port,
            "host": configs.BENCH_HOST,
            "auth_host": configs.AUTH_HOST,
            **extra,
        }

    # -- the origin --------------------------------------------------------------------------

    def start_origin(self) -> Target:
        """nginx serving /small (12 B) and /64k on loopback, shared by every proxy."""
        www = self.run_dir / "www"
        configs.write_origin_files(www)
        self.origin_port = free_port()
        conf = configs.render_template(
            "origin-nginx.conf", self.run_dir, self._values(self.origin_port, www_dir=www)
        )
        argv = [self.tools.nginx, "-p", f"{self.run_dir}/", "-c", str(conf), "-g", "daemon off;"]
        proc = self._spawn("origin", argv, pin=False, cpus=self.origin_cpus)
        wait_for_status(self.origin_port, configs.BENCH_HOST, configs.SMALL_PATH, proc)
        return Target("origin", self.origin_port, proc)

    # -- the proxies -----------------------------------------------------------------------

    def _ready(self, target: Target) -> Target:
        try:
            wait_for_status(
                target.port, target.host, configs.SMALL_PATH, target.proc, target.headers
            )
        except RuntimeError as error:
            log = self.run_dir / f"{target.name.split('+')[0]}.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise RuntimeError(f"{error}; log: {' | '.join(tail)}") from None
        return target

    def start_nginx(self) -> Target:
        port = free_port()
        conf = configs.render_template("nginx.conf", self.run_dir, self._values(port))
        argv = [self.tools.nginx, "-p", f"{self.run_dir}/", "-c", str(conf), "-g", "daemon off;"]
        return self._ready(Target("nginx", port, self._spawn("nginx", argv)))

    def start_haproxy(self) -> Target:
        port = free_port()
        conf = configs.render_template("haproxy.cfg", self.run_dir, self._values(port))
        argv = [self.tools.haproxy, "-db", "-f", str(conf)]
        return self._ready(Target("haproxy", port, self._spawn("haproxy", argv)))

    def start_traefik(self) -> Target:
        port = free_port()
        configs.render_template("traefik-dynamic.yml", self.run_dir, self._values(port))
        conf = configs.render_template("traefik.yml", self.run_dir, self._values(port))
        argv = [self.tools.traefik, f"--configFile={conf}"]
        return self._ready(Target("traefik", port, self._spawn("traefik", argv, GO_ENV)))

    def start_caddy(self) -> Target:
        port = free_port()
        conf = configs.render_template("Caddyfile", self.run_dir, self._values(port))
        home = self.run_dir / "caddy-home"
        home.mkdir(exist_ok=True)
        env = {
            **GO_ENV,
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
        }
        argv = [self.tools.caddy, "run", "--config", str(conf), "--adapter", "caddyfile"]
        return self._ready(Target("caddy", port, self._spawn("caddy", argv, env)))

    def start_floor(self) -> Target:
        """bench/floor_proxy.py: the bare uvloop + httptools relay, vhostd's lower bound."""
        port = free_port()
        argv = [sys.executable, "-m", "bench.floor_proxy", str(port), str(self.origin_port)]
        proc = start(
            pinned(argv, self.proxy_cpus, self.tools.taskset),
            self.run_dir / "floor.log",
            cwd=Path(__file__).resolve().parent.parent,
        )
        self._procs.append(proc)
        return self._ready(Target("floor", port, proc))

    def start_vhostd(
        self,
        workers: int = 1,
        docker: bool = False,
        name: str = "vhostd",
        pin: bool | None = None,
        source: Path | None = None,
    ) -> tuple[Target, Target]:
        """vhostd plus the same process seen through its basic-auth host (bcrypt htpasswd);
        `source`: run the vhostd of that source tree (its src/ first on the path) instead."""
        port, admin_port = free_port(), free_port()
        values = self._values(
            port,
            admin_port=admin_port,
            docker_enabled="true" if docker else "false",
        )
        (self.run_dir / "vhostd-sites.d").mkdir(exist_ok=True)
        (self.run_dir / "vhostd-htpasswd").mkdir(exist_ok=True)
        conf = configs.render_template("vhostd.toml", self.run_dir, values, f"{name}.toml")
        self._write_htpasswd(conf)
        argv = [self.tools.vhostd, "serve", "--config", str(conf), "--log-level", "warning"]
        if workers != 1:
            argv += ["--workers", str(workers)]
        # several workers need several cores: only a single-process vhostd is pinned, unless
        # asked (bench/scaling.py holds each worker to a CPU quota on the proxy's core)
        env = {"PYTHONPATH": str(source / "src")} if source is not None else None
        proc = self._spawn(name, argv, env, pin=workers == 1 if pin is None else pin)
        plain = self._ready(Target(name, port, proc, admin_port=admin_port))
        token = base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()
        auth = self._ready(
            Target(
                f"{name}+auth",
                port,
                proc,
                host=configs.AUTH_HOST,
                headers={"Authorization": f"Basic {token}"},
                admin_port=admin_port,
            )
        )
        return plain, auth

    def _write_htpasswd(self, conf: Path) -> None:
        """bcrypt entry for AUTH_HOST: `vhostd auth add`, else Apache's htpasswd -B."""
        added = subprocess.run(
            [
                self.tools.vhostd,
                "auth",
                "add",
                "--config",
                str(conf),
                configs.AUTH_HOST,
                AUTH_USER,
                "--password-stdin",
            ],
            input=AUTH_PASSWORD + "\n",
            capture_output=True,
            text=True,
            check=False,
        )
        path = self.run_dir / "vhostd-htpasswd" / configs.AUTH_HOST
        if added.returncode == 0 and path.exists():
            self.htpasswd_tool = "vhostd auth add"
            return
        subprocess.run(
            [self.tools.htpasswd, "-B", "-b", "-c", str(path), AUTH_USER, AUTH_PASSWORD],
            check=True,
            capture_output=True,
        )
        self.htpasswd_tool = "htpasswd -B"
        os.chmod(path, 0o644)
