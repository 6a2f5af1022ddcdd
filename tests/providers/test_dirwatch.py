"""inotify watches read by the event loop (providers/dirwatch.py), against the real kernel."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from vhostd.providers.dirwatch import (
    IN_CREATE,
    IN_DELETE_SELF,
    IN_Q_OVERFLOW,
    DirWatch,
    changed_paths,
    parse_events,
)


def packed(wd: int, mask: int, name: bytes, padded_to: int) -> bytes:
    return struct.pack("=iIII", wd, mask, 0, padded_to) + name.ljust(padded_to, b"\0")


def test_events_are_parsed_with_and_without_names() -> None:
    buffer = packed(1, IN_CREATE, b"a.toml", 16) + packed(2, IN_DELETE_SELF, b"", 0)
    buffer += packed(1, IN_CREATE, b"x" * 255, 256)
    assert parse_events(buffer) == [
        (1, IN_CREATE, "a.toml"),
        (2, IN_DELETE_SELF, ""),
        (1, IN_CREATE, "x" * 255),
    ]


def test_paths_name_the_entry_or_the_directory_itself() -> None:
    watches = {1: {"/s/sites.d": None}, 2: {"/s/htpasswd": None}}
    events = [(1, IN_CREATE, "a.toml"), (2, IN_DELETE_SELF, ""), (7, IN_CREATE, "gone")]
    assert changed_paths(events, watches) == {"/s/sites.d/a.toml", "/s/htpasswd"}
    # lost events: every directory has to be read again
    assert changed_paths([(-1, IN_Q_OVERFLOW, "")], watches) == {"/s/sites.d", "/s/htpasswd"}


def test_a_parent_reports_only_the_entries_wanted_and_every_alias() -> None:
    # /s watched for its entry sites.d; /s reached again as /link, for all its entries
    watches = {1: {"/s": frozenset({"sites.d"}), "/link": None}}
    events = [(1, IN_CREATE, "sites.d"), (1, IN_CREATE, "access.log")]
    assert changed_paths(events, watches) == {"/s/sites.d", "/link/sites.d", "/link/access.log"}


async def next_burst(bursts: AsyncGenerator[set[str], None]) -> set[str]:
    return await asyncio.wait_for(bursts.__anext__(), timeout=10)


def bursts_in(
    directories: list[Path], quiet_s: float, max_delay_s: float, stop: asyncio.Event | None = None
) -> AsyncGenerator[set[str], None]:
    """The bursts of a DirWatch whose watches are in place on return; closing ends the watch."""
    watch = DirWatch([str(d) for d in directories])

    async def bursts() -> AsyncGenerator[set[str], None]:
        with watch:
            async for burst in watch.bursts(quiet_s, max_delay_s, stop or asyncio.Event()):
                yield burst

    return bursts()


def test_a_burst_of_changes_is_reported_once_it_goes_quiet(tmp_path: Path) -> None:
    async def main() -> None:
        bursts = bursts_in([tmp_path], 0.5, 5)
        first = asyncio.ensure_future(next_burst(bursts))
        # an editor's save: a temporary file written, then renamed over the real one; the
        # loop reads the first events before the rename happens
        (tmp_path / ".a.toml.tmp").write_text("x")
        await asyncio.sleep(0.05)
        assert not first.done()
        os.rename(tmp_path / ".a.toml.tmp", tmp_path / "a.toml")
        assert await first == {str(tmp_path / ".a.toml.tmp"), str(tmp_path / "a.toml")}
        (tmp_path / "a.toml").unlink()
        assert await next_burst(bursts) == {str(tmp_path / "a.toml")}
        await bursts.aclose()

    asyncio.run(main())


def test_a_burst_that_never_goes_quiet_is_cut_at_the_maximum_delay(tmp_path: Path) -> None:
    async def main() -> None:
        bursts = bursts_in([tmp_path], 1, 0.1)
        first = asyncio.ensure_future(next_burst(bursts))
        writes = 0
        # a write every 10 ms is never 1 s quiet; the burst must come out all the same
        while not first.done() and writes < 1_000:
            (tmp_path / f"f{writes}").write_text("x")
            writes += 1
            await asyncio.sleep(0.01)
        assert first.done() and writes < 1_000
        assert str(tmp_path / "f0") in first.result()
        await bursts.aclose()

    asyncio.run(main())


def test_a_watched_directory_that_goes_away_reports_itself(tmp_path: Path) -> None:
    watched = tmp_path / "sites.d"
    watched.mkdir()

    async def main() -> None:
        bursts = bursts_in([watched], 0.02, 1)
        first = asyncio.ensure_future(next_burst(bursts))
        watched.rmdir()
        assert str(watched) in await first
        await bursts.aclose()

    asyncio.run(main())


def test_stop_ends_the_watch_and_closes_its_descriptor(tmp_path: Path) -> None:
    async def main() -> None:
        fds_before = set(os.listdir("/proc/self/fd"))
        stop = asyncio.Event()
        bursts = bursts_in([tmp_path], 0.02, 1, stop)
        first = asyncio.ensure_future(next_burst(bursts))
        assert set(os.listdir("/proc/self/fd")) != fds_before  # the inotify descriptor
        stop.set()
        with pytest.raises(StopAsyncIteration):
            await first
        assert set(os.listdir("/proc/self/fd")) == fds_before

    asyncio.run(main())


def test_a_missing_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    async def main() -> None:
        fds_before = set(os.listdir("/proc/self/fd"))
        with pytest.raises(FileNotFoundError) as raised:
            DirWatch([str(tmp_path), str(tmp_path / "nowhere")])
        assert raised.value.filename == str(tmp_path / "nowhere")
        assert set(os.listdir("/proc/self/fd")) == fds_before

    asyncio.run(main())


def test_watching_starts_no_thread(tmp_path: Path) -> None:
    async def main() -> None:
        threads_before = len(os.listdir("/proc/self/task"))
        bursts = bursts_in([tmp_path], 0.02, 1)
        first = asyncio.ensure_future(next_burst(bursts))
        (tmp_path / "a").write_text("x")
        assert await first == {str(tmp_path / "a")}
        assert len(os.listdir("/proc/self/task")) == threads_before
        await bursts.aclose()

    asyncio.run(main())


def test_a_parent_watched_for_one_entry_sleeps_through_the_others(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("x")

    async def main() -> None:
        watch = DirWatch([])
        watch.add(str(tmp_path), ["sites.d"])
        with watch:
            with log.open("a") as handle:  # written to all day: wakes nobody
                for _ in range(100):
                    handle.write("GET /\n")
                    handle.flush()
            with pytest.raises(BlockingIOError):  # the kernel queued not one event for it
                os.read(watch.fd, 65536)
            (tmp_path / "sites.d").mkdir()
            bursts = watch.bursts(0.02, 1, asyncio.Event())
            assert await next_burst(bursts) == {str(tmp_path / "sites.d")}
            await bursts.aclose()

    asyncio.run(main())


def test_one_directory_under_two_paths_reports_both(tmp_path: Path) -> None:
    real = tmp_path / "etc"
    real.mkdir()
    (real / "a.toml").write_text("x")
    (tmp_path / "link").symlink_to(real)

    async def main() -> None:
        # as the file provider adds them: sites.d = link (every entry), and etc as the parent
        # of htpasswd = etc/htpasswd; the second add must not narrow or rename the first
        watch = DirWatch([str(tmp_path / "link")])
        watch.add(str(real), ["htpasswd"])
        with watch:
            bursts = watch.bursts(0.02, 1, asyncio.Event())
            (real / "a.toml").write_text("edited")  # a write, which only a full watch sees
            assert await next_burst(bursts) == {str(tmp_path / "link" / "a.toml")}
            (real / "htpasswd").mkdir()
            assert await next_burst(bursts) == {
                str(tmp_path / "link" / "htpasswd"),
                str(real / "htpasswd"),
            }
            await bursts.aclose()

    asyncio.run(main())
