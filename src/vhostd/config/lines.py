"""Find the line of a table or key in TOML text (pure).

tomllib returns plain dicts without positions, so validation errors get their line by
scanning the text: the Nth `[[site]]` header, a `[server]` header, or a key inside either.
Good enough for hand-written files; anything it cannot place falls back to the table header.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*(?:\"([^\"]+)\"|'([^']+)'|([A-Za-z0-9_\-]+))\s*=")


class TomlLines:
    """Line numbers (1-based) of the table headers and keys of one TOML text."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        # (line index, name, is_array) for every header, in order
        self.headers: list[tuple[int, str, bool]] = []
        in_multiline = False
        for index, line in enumerate(self.lines):
            # skip the inside of multi-line strings, where a "[x]" line is not a header
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = not in_multiline
                continue
            if in_multiline:
                continue
            match = _HEADER.match(line)
            if match:
                name = match.group(2).replace('"', "").replace("'", "").replace(" ", "")
                self.headers.append((index, name, match.group(1) == "[["))

    def table(self, name: str, nth: int = 0) -> int | None:
        """Line of the `nth` (0-based) `[[name]]` header, or of the `[name]` header."""
        count = 0
        for index, header, _is_array in self.headers:
            if header == name:
                if count == nth:
                    return index + 1
                count += 1
        return None

    def key(self, table: str, key: str, nth: int = 0) -> int | None:
        """Line of `key = ...` inside the given table (or at the top level when table="")."""
        start = 0
        if table:
            header_line = self.table(table, nth)
            if header_line is None:
                return None
            start = header_line
        end = len(self.lines)
        for index, _name, _is_array in self.headers:
            if index >= start:
                end = index
                break
        for index in range(start, end):
            match = _KEY.match(self.lines[index])
            if match and key in match.groups():
                return index + 1
        return None

    def locate(self, table: str, key: str | None = None, nth: int = 0) -> int:
        """Best line for a problem: the key's line, else its table's header, else 1."""
        if key is not None:
            found = self.key(table, key, nth)
            if found is not None:
                return found
        if table:
            found = self.table(table, nth)
            if found is None:  # written inline: `site = [{...}]`
                found = self.key("", table)
            if found is not None:
                return found
        return 1
