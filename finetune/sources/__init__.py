"""One module per data source; each exposes `collect(...) -> Iterator[Record | Skipped]`.

Sources never raise for a bad input: they yield `Skipped(where, reason)` and go on.
"""


class SourceSetupError(RuntimeError):
    """The source cannot run at all (no token, unreachable service): one clear message, no records."""
