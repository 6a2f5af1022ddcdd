"""Every one-byte change, insertion, deletion and truncation of a message: the inputs the
C scanners are compared with llhttp on (tests/proxy/test_headscan.py, test_chunks.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def one_byte_variants(data: bytes, bytes_to_try: Sequence[bytes]) -> Iterator[bytes]:
    for i in range(len(data) + 1):
        yield data[:i]
        for byte in bytes_to_try:
            yield data[:i] + byte + data[i:]
            if i < len(data):
                yield data[:i] + byte + data[i + 1 :]
        if i < len(data):
            yield data[:i] + data[i + 1 :]
