"""After answering, the real server's llama.cpp threads go to sleep at once instead of spinning for
milliseconds on cores the editor needs (libgomp's default spin is 2–5 ms on the CI machine)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from lsp.driver import start_session, stop_session
from tests.e2e.conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads thread states from /proc (Linux)"),
]

TEXT = "defmodule Cart do\n  def total(items) do\n    \n  end\nend\n"


def running_threads(pid: int) -> int:
    """Threads of `pid`, other than its main thread, that are running or waiting for a core."""
    count = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        if int(tid) == pid:
            continue
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:  # the thread just ended
            continue
        count += stat.rsplit(")", 1)[1].split()[0] == "R"
    return count


def running_threads_over(pid: int, start_s: float, end_s: float) -> list[int]:
    """`running_threads` sampled every 0.25 ms from `start_s` to `end_s` from now: a spinning thread is
    running in every sample, a thread merely finishing its work (or waiting for a core) is not."""
    began = time.perf_counter()
    samples = []
    for offset in range(int(start_s * 4000), int(end_s * 4000) + 1):
        while time.perf_counter() - began < offset / 4000:
            pass
        samples.append(running_threads(pid))
    return samples


async def test_model_threads_sleep_right_after_a_completion(tmp_path, monkeypatch):
    settings = {
        "completion": {"debounceMs": 0, "maxTokens": 8, "speculative": False, "typedAheadCache": False,
                       "prefill": False},
        "model": {"threads": 2},
        "idioms": {"enabled": False},
    }
    for tuned in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):  # the server inherits this client's environment
        monkeypatch.delenv(tuned, raising=False)
    session = await start_session(ROOT / "examples", settings)
    try:
        pid = session.client._server.pid
        uri = await session.open(tmp_path / "cart.ex", TEXT)
        spinning = []
        for column in range(5):
            await session.inline(uri, 2, 4 + column)
            spinning.append(min(running_threads_over(pid, start_s=0.0005, end_s=0.002)))
            session.insert(uri, 2, 4 + column, "x")
            await asyncio.sleep(0.05)
        assert spinning == [0] * 5, "threads kept running after the answer"
    finally:
        await stop_session(session)
