"""Build a LateStopCheck the way the server does: on another thread, once the backend says it started."""

from __future__ import annotations

import threading
from collections.abc import Callable

from lsp.backends.base import LateStopCheck, StopCheck


def build_when_started(stop: LateStopCheck, make: Callable[[], StopCheck]) -> dict[str, bool]:
    """Start a thread that waits for the backend's signal, then builds; the dict says whether it came."""
    seen: dict[str, bool] = {}

    def builder() -> None:
        seen["started"] = stop.started.wait(5)
        stop.build(make)

    threading.Thread(target=builder, daemon=True).start()
    return seen
