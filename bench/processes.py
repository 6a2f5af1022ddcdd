"""Start, probe, measure and stop the processes under test (origin, proxies, wrk helpers)."""

from __future__ import annotations

import http.client
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

NOFILE_LIMIT = 65536  # 10,000 idle client connections + upstream + files, with margin


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_nofile_limit() -> None:
    """Raise this process's open-file limit: to NOFILE_LIMIT as root, else to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= NOFILE_LIMIT:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE_LIMIT, max(hard, NOFILE_LIMIT)))
    except (ValueError, OSError):  # not root: the hard limit is as far as we may go
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _child_setup() -> None:
    os.setsid()  # own process group: stop() ends it and everything it forked
    raise_nofile_limit()


def pinned(argv: Sequence[str], cpus: str | None, taskset: str | None) -> list[str]:
    """Prefix argv with taskset when pinning is asked for and possible."""
    if cpus is None or taskset is None:
        return list(argv)
    return [taskset, "-c", cpus, *argv]


def start(
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start argv in its own process group, stdout+stderr into log_path."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    log = open(log_path, "wb")  # noqa: SIM115 - owned by the child for its lifetime
    try:
        return subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            preexec_fn=_child_setup,
        )
    finally:
        log.close()


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group we created, SIGKILL it if it outlives the grace period."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=grace)


def http_status(
    port: int,
    host: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    timeout: float = 2.0,
) -> int | None:
    """One GET on a fresh connection; the status code, or None when nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_for_status(
    port: int,
    host: str,
    path: str,
    proc: subprocess.Popen[bytes] | None = None,
    headers: Mapping[str, str] | None = None,
    expected: int = 200,
    timeout: float = 30.0,
) -> None:
    """Poll until GET answers `expected`; fail early when the process died."""
    deadline = time.monotonic() + timeout
    last: int | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before serving {host}")
        last = http_status(port, host, path, headers, timeout=1.0)
        if last == expected:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{host}:{port}{path} answered {last}, not {expected}, within {timeout}s")


def descendants(pid: int) -> list[int]:
    """pid first, then every process below it (a vhostd's forked workers, for one)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        task_dir = Path(f"/proc/{current}/task")
        try:
            tasks = list(task_dir.iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            pending.extend(int(child) for child in children)
    return found


def rss_kib(pid: int) -> int:
    """Resident memory (VmRSS) of pid and every descendant, in KiB (taskset execs in place)."""
    total = 0
    for member in descendants(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


def context_switches(pid: int) -> int:
    """Times the threads of pid and its descendants were switched out so far (slept, or
    were preempted): in an idle process each is a wake-up by a timer or another thread."""
    total = 0
    for member in descendants(pid):
        try:
            tasks = list(Path(f"/proc/{member}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                text = (task / "status").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if "ctxt_switches:" in line:  # voluntary_ and nonvoluntary_
                    total += int(line.split()[1])
    return total


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds used so far by pid and its live descendants."""
    user = system = 0.0
    for member in descendants(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
        user += int(fields[11]) / _CLOCK_TICKS  # utime is field 14 of the whole line
        system += int(fields[12]) / _CLOCK_TICKS
    return user, system


def interprocessor_interrupts(interrupts: str | None = None) -> int:
    """Rescheduling and function-call interrupts of all CPUs so far (/proc/interrupts): one
    core waking another. On a virtual machine the hypervisor handles each of them."""
    text = interrupts if interrupts is not None else Path("/proc/interrupts").read_text()
    total = 0
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] in ("RES:", "CAL:"):
            total += sum(int(field) for field in fields[1:] if field.isdigit())
    return total


def machine_ticks(stat: str | None = None) -> tuple[int, int]:
    """(stolen, all) CPU ticks of the whole machine so far, from /proc/stat's "cpu" line:
    on a virtual machine, steal is the time the hypervisor gave our vCPUs to someone else."""
    text = stat if stat is not None else Path("/proc/stat").read_text()
    fields = [int(x) for x in text.split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is counted in user)
    return fields[7], sum(fields[:8])


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The share of the machine's CPU time stolen between two machine_ticks() readings."""
    elapsed = after[1] - before[1]
    return round(100 * (after[0] - before[0]) / elapsed, 1) if elapsed > 0 else None
