"""Render the proxy configurations from bench/templates into a run directory.

Templates use `{{name}}` placeholders; a placeholder without a value is an error, so a
template and its caller cannot drift apart silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

BENCH_HOST = "bench.local"  # every proxy routes this Host to the origin
AUTH_HOST = "auth.bench.local"  # vhostd protects this one with basic auth
SMALL_PATH = "/small"  # 12-byte body
LARGE_PATH = "/64k"  # 64 KiB body
FORM_PATH = "/form"  # takes a POST (bench/lua/post.lua), answers 12 bytes
CHUNKED_PATH = "/chunked"  # a 3.3 KB page sent chunked, as an application server sends it
SMALL_BODY = b"hello world\n"
LARGE_BODY_SIZE = 64 * 1024


def render(text: str, values: Mapping[str, object]) -> str:
    """Replace every `{{name}}` in text; raise KeyError naming an unknown placeholder."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"template placeholder {{{{{name}}}}} has no value")
        return str(values[name])

    return _PLACEHOLDER.sub(substitute, text)


def render_template(
    name: str, run_dir: Path, values: Mapping[str, object], out_name: str | None = None
) -> Path:
    """Render bench/templates/<name> into run_dir/<out_name or name>; return that path."""
    text = (TEMPLATE_DIR / name).read_text()
    merged = {"run_dir": run_dir, "user_directive": nginx_user_directive(), **values}
    out = run_dir / (out_name or name)
    out.write_text(render(text, merged))
    return out


def nginx_user_directive() -> str:
    """As root nginx workers default to `nobody`, who cannot read a private temp dir."""
    return "user root;" if os.geteuid() == 0 else ""


def write_origin_files(www_dir: Path) -> None:
    """The bodies the origin serves: 12 bytes, 64 KiB, and the page behind CHUNKED_PATH.

    The page goes through nginx's SSI filter, which drops the length: nginx sends it
    chunked, the include splitting it into three chunks (1.6 KB, 12 B, 1.6 KB)."""
    www_dir.mkdir(parents=True, exist_ok=True)
    (www_dir / SMALL_PATH.lstrip("/")).write_bytes(SMALL_BODY)
    pattern = b"0123456789abcdef" * (LARGE_BODY_SIZE // 16)
    (www_dir / LARGE_PATH.lstrip("/")).write_bytes(pattern)
    rows = b"".join(b"<p>row %d lorem ipsum dolor sit amet</p>\n" % i for i in range(40))
    page = b"<html><body>\n" + rows + b'<!--# include virtual="/part" -->\n' + rows
    (www_dir / "page.html").write_bytes(page + b"</body></html>\n")
