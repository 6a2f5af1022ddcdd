"""Local test images for Docker tests: no registry, just busybox-static packed by `docker import`.

`responder_image()` is a tiny HTTP server (busybox httpd) whose pages name the container
(env RESPONDER_NAME, default its hostname) and the directory they were served from, so a
test can tell which replica and which upstream path answered. It listens on $PORT (80).
Extra directories come from RESPONDER_DIRS ("/api /v2"): each gets index.html and where.txt.
SIGTERM stops it at once (the shell is PID 1 and traps it), so `docker stop` is quick; with
STOP_DELAY=<seconds> it keeps serving that long after SIGTERM, like a graceful server.
The tag carries a hash of the content: building is idempotent and cached by tag.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "httpd", "mkdir", "hostname", "wget", "sleep", "cat", "touch", "rm", "test", "nc")

SERVE_SCRIPT = """#!/bin/sh
name="${RESPONDER_NAME:-$(hostname)}"
for dir in / ${RESPONDER_DIRS:-}; do
  mkdir -p "/www$dir"
  echo "$name $dir" > "/www$dir/index.html"
  echo "$name $dir" > "/www$dir/where.txt"
done
trap 'sleep "${STOP_DELAY:-0}"; kill $pid 2>/dev/null; exit 0' TERM INT
httpd -f -p "${PORT:-80}" -h /www &
pid=$!
wait $pid
"""


def _tar_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("bin", "tmp", "www"):
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(entry)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        script = SERVE_SCRIPT.encode()
        entry = tarfile.TarInfo("serve")
        entry.size, entry.mode = len(script), 0o755
        tar.addfile(entry, io.BytesIO(script))
    return buffer.getvalue()


def _exists(tag: str, docker: tuple[str, ...]) -> bool:
    probe = subprocess.run([*docker, "image", "inspect", tag], capture_output=True, check=False)
    return probe.returncode == 0


def responder_image(docker: tuple[str, ...] = ("docker",)) -> str:
    """Build (once) and return the responder image tag; `docker` may add `-H <socket>`."""
    if not BUSYBOX.exists():
        raise RuntimeError("/bin/busybox is missing: run `bash scripts/ensure-system.sh`")
    digest = hashlib.sha256(SERVE_SCRIPT.encode() + " ".join(APPLETS).encode()).hexdigest()
    tag = f"vhostd-test-responder:{digest[:12]}"
    if _exists(tag, docker):
        return tag
    subprocess.run(
        [
            *docker,
            "import",
            "-c",
            'ENTRYPOINT ["/bin/sh", "/serve"]',
            "-c",
            "ENV PATH=/bin",
            "-",
            tag,
        ],
        input=_tar_bytes(),
        capture_output=True,
        check=True,
    )
    return tag
