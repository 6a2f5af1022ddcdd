# The C module proxy/_headscan.c (built by `make native`).
RESPONSE_NAMES: tuple[bytes, ...]
REQUEST_NAMES: tuple[bytes, ...]

def scan_response(
    data: bytes, /
) -> tuple[int, int, bool, int, bytes | None, bytes, bytes, bool] | None: ...
def scan_request(
    data: bytes, start: int, max_headers: int, max_head_size: int, trusted: bool, /
) -> tuple[int, bytes, bytes, bytes, bool, bytes | None, bytes | None, bytes, int, int] | None: ...
