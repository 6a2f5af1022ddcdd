"""The one project error type: caught at the top of the CLI and printed without a traceback."""


class VhostdError(Exception):
    """A user-facing error. `where` is a location such as "sites.d/a.toml:3"."""

    def __init__(self, reason: str, where: str = "") -> None:
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason
        self.where = where
