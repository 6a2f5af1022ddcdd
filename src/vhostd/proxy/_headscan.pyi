# The C module proxy/_headscan.c (built by `make native`).
HOP_BY_HOP: tuple[bytes, ...]

def scan_response(
    data: bytes, /
) -> tuple[int, int, bool, int, bytes | None, bytes, bytes] | None: ...
