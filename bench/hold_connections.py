"""Open N keep-alive connections to a proxy, one request each, then hold them idle.

Run as a separate process (`python -m bench.hold_connections PORT HOST PATH COUNT`) so its
own descriptors do not count against the benchmark driver. Prints `HOLDING <n>` once the
connections are open and answered, then waits until stdin closes.
"""

from __future__ import annotations

import asyncio
import sys

from bench.processes import raise_nofile_limit

CONCURRENT_OPENS = 200  # stay below listen backlogs while connecting


async def _open_one(
    port: int, request: bytes, gate: asyncio.Semaphore
) -> asyncio.StreamWriter | None:
    async with gate:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout=10
            )
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await asyncio.wait_for(reader.readexactly(length), timeout=10)
            if not head.startswith(b"HTTP/1.1 200"):
                writer.close()
                return None
            return writer
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            return None


async def hold(port: int, host: str, path: str, count: int) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    gate = asyncio.Semaphore(CONCURRENT_OPENS)
    writers = await asyncio.gather(*(_open_one(port, request, gate) for _ in range(count)))
    held = [w for w in writers if w is not None]
    print(f"HOLDING {len(held)}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the driver closes our stdin
    for writer in held:
        writer.close()


def main() -> None:
    raise_nofile_limit()
    port, host, path, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    asyncio.run(hold(port, host, path, count))


if __name__ == "__main__":
    main()
