"""Running the external tools a deploy needs (git, docker, compose, vagrant), with progress.

A failing command becomes a VhostdError carrying the step and the last lines the tool
printed, so the user sees why without a traceback. Long steps echo the tool's output,
indented, as it arrives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence

from vhostd.errors import VhostdError

TAIL_LINES = 12


def say(message: str) -> None:
    """One progress line."""
    print(message, flush=True)


def run(
    command: Sequence[str],
    step: str,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    echo: bool = False,
    timeout: float | None = 1800,
) -> str:
    """Run `command`; return its standard output. `echo` streams its output as progress."""
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    started = time.monotonic()
    try:
        if not echo:
            done = subprocess.run(
                list(command), cwd=cwd, env=full_env, capture_output=True, text=True,
                timeout=timeout, stdin=subprocess.DEVNULL, check=False,
            )
            if done.returncode != 0:
                raise _failure(step, done.returncode, (done.stderr or done.stdout).splitlines())
            return done.stdout
        return _streamed(command, step, cwd, full_env, started, timeout)
    except FileNotFoundError:
        raise VhostdError(f"{step}: {command[0]!r} is not installed") from None
    except subprocess.TimeoutExpired:
        raise VhostdError(f"{step}: still running after {timeout:.0f}s; gave up") from None


def _streamed(command: Sequence[str], step: str, cwd: str | None, env: Mapping[str, str],
              started: float, timeout: float | None) -> str:
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    output: list[str] = []
    with subprocess.Popen(
        list(command), cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True, bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            output.append(line)
            tail.append(line)
            if line:
                print(f"    {line}", flush=True)
            if timeout is not None and time.monotonic() - started > timeout:
                process.kill()
                raise subprocess.TimeoutExpired(list(command), timeout)
        code = process.wait()
    if code != 0:
        raise _failure(step, code, list(tail))
    return "\n".join(output)


def _failure(step: str, code: int, lines: list[str]) -> VhostdError:
    shown = [line for line in lines if line.strip()][-TAIL_LINES:]
    detail = ("\n  " + "\n  ".join(shown)) if shown else ""
    return VhostdError(f"{step} failed (exit {code}){detail}")


def compose_command() -> list[str]:
    """Docker's compose: the plugin (`docker compose`) when present, else `docker-compose`."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False,
            stdin=subprocess.DEVNULL,
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise VhostdError(
        "a compose project needs Docker's compose: install the compose plugin or "
        "`docker-compose` (`make system` does)"
    )


def warn(message: str) -> None:
    print(f"vhostd: warning: {message}", file=sys.stderr, flush=True)
