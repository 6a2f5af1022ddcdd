"""Directory watches read by the event loop itself: inotify, no thread and no polling.

The file and Vagrant providers used watchfiles, whose Rust watcher runs in a worker thread
and takes the GIL every `step` milliseconds to look at its stop flag, whether or not
anything changed: about 100 times a second for the file provider's 10 ms. An idle vhostd
woke that often, and under load each wake-up made the proxy's thread hand the GIL over.
Here the inotify descriptor sits in the event loop beside the sockets and costs nothing
until a directory changes.

Watches are not recursive: the providers watch exactly the directories whose entries
matter, and a parent only for some names coming and going (so a log written beside
`sites.d` wakes nobody). A change is reported as the path it names (`dir/name`), under
every path the directory was added as; an event about a watched directory itself
(deleted, moved, unmounted, attributes) and a queue overflow are reported as the
directory's own path, which tells the caller to look at the directory again.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import struct
from collections.abc import AsyncGenerator, Iterable
from typing import Any

# <sys/inotify.h>
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_ONLYDIR = 0x01000000
IN_MASK_ADD = 0x20000000  # a second watch on the same directory widens the mask, not replaces

# what watchfiles' inotify backend (the notify crate) asked for
WATCH_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
# a parent watched only for some of its entries coming, going or being renamed: its other
# entries (an access log beside sites.d, say) are written to without waking anyone
ENTRY_MASK = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
_READ_SIZE = 64 * 1024  # many events per read; one event is at most 16 + NAME_MAX + 1 bytes

_EVENT_HEAD = struct.Struct("=iIII")  # wd, mask, cookie, length of the name that follows

_libc = ctypes.CDLL(None, use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_init1.restype = ctypes.c_int
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_add_watch.restype = ctypes.c_int


def parse_events(buffer: bytes) -> list[tuple[int, int, str]]:
    """(watch descriptor, mask, name) of each event in what one read() returned.

    The kernel hands out whole events only; the name is NUL-padded and empty for an event
    about the watched directory itself.
    """
    events: list[tuple[int, int, str]] = []
    offset = 0
    while offset + _EVENT_HEAD.size <= len(buffer):
        wd, mask, _cookie, length = _EVENT_HEAD.unpack_from(buffer, offset)
        start = offset + _EVENT_HEAD.size
        name = buffer[start : start + length].split(b"\0", 1)[0]
        events.append((wd, mask, os.fsdecode(name)))
        offset = start + length
    return events


# per watch descriptor: each path it was added under → the entry names wanted (None: all).
# One directory reached by two paths (a symlink) has one descriptor and both paths.
Watches = dict[int, dict[str, frozenset[str] | None]]


def changed_paths(events: Iterable[tuple[int, int, str]], watches: Watches) -> set[str]:
    """The paths these events report, under every path their directory was added as."""
    paths: set[str] = set()
    for wd, mask, name in events:
        if mask & IN_Q_OVERFLOW:  # events were lost: every directory must be looked at again
            paths.update(path for aliases in watches.values() for path in aliases)
            continue
        for path, names in watches.get(wd, {}).items():
            if not name:  # about the directory itself
                paths.add(path)
            elif names is None or name in names:
                paths.add(os.path.join(path, name))
    return paths


class DirWatch:
    """inotify watches on some directories, read by the running loop; close() ends them.

    The watches are in place when the constructor returns, so nothing that changes after
    it is missed, even before bursts() is first awaited.
    """

    def __init__(self, directories: Iterable[str]) -> None:
        self.loop = asyncio.get_running_loop()
        self.pending: set[str] = set()
        self.arrived = asyncio.Event()
        self.watches: Watches = {}
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            error = ctypes.get_errno()
            raise OSError(error, f"inotify: {os.strerror(error)}")
        try:
            for directory in directories:
                self.add(directory)
            self.loop.add_reader(self.fd, self._read)
        except BaseException:
            os.close(self.fd)
            raise

    def add(self, directory: str, names: Iterable[str] | None = None) -> None:
        """Watch one more directory, for every entry or only for `names` coming and going;
        OSError naming it when it cannot be watched."""
        mask = WATCH_MASK if names is None else ENTRY_MASK
        wd = _libc.inotify_add_watch(
            self.fd, os.fsencode(directory), mask | IN_ONLYDIR | IN_MASK_ADD
        )
        if wd < 0:
            error = ctypes.get_errno()
            raise OSError(error, f"cannot watch: {os.strerror(error)}", directory)
        aliases = self.watches.setdefault(wd, {})
        wanted = None if names is None else frozenset(names)
        if directory in aliases:  # added twice: wanted for the union of both
            known = aliases[directory]
            wanted = None if known is None or wanted is None else known | wanted
        aliases[directory] = wanted

    def paths(self) -> set[str]:
        """Every path a directory was added under."""
        return {path for aliases in self.watches.values() for path in aliases}

    def _read(self) -> None:
        try:
            buffer = os.read(self.fd, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        paths = changed_paths(parse_events(buffer), self.watches)
        if paths:
            self.pending |= paths
            self.arrived.set()

    async def _arrival(self, timeout: float | None, stop: asyncio.Future[Any]) -> bool:
        """True when an event arrives within `timeout`; False on timeout or stop."""
        self.arrived.clear()
        arrival = asyncio.ensure_future(self.arrived.wait())
        try:
            await asyncio.wait((arrival, stop), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            arrival.cancel()
        return self.arrived.is_set() and not stop.done()

    async def bursts(
        self, quiet_s: float, max_delay_s: float, stop: asyncio.Event
    ) -> AsyncGenerator[set[str], None]:
        """Each burst of changes, once `quiet_s` passes without another event (at most
        `max_delay_s` after its first), until `stop` is set."""
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                while not self.pending:
                    await self._arrival(None, stopped)
                    if stop.is_set():
                        return
                deadline = self.loop.time() + max_delay_s
                while (left := deadline - self.loop.time()) > 0:
                    if not await self._arrival(min(quiet_s, left), stopped):
                        break
                if stop.is_set():
                    return
                burst, self.pending = self.pending, set()
                yield burst
        finally:
            stopped.cancel()

    def __enter__(self) -> DirWatch:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)  # the kernel drops the watches with the descriptor
            self.fd = -1

