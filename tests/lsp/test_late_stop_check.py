"""LateStopCheck: a stop check the server builds while the backend is already evaluating the prompt."""

from __future__ import annotations

import threading
import time

import pytest

from lsp.backends.base import BackendError, LateStopCheck, generation_starts
from tests.lsp.late_check import build_when_started


def test_the_check_waits_for_its_build_then_answers_as_the_built_check() -> None:
    stop = LateStopCheck()
    seen = build_when_started(stop, lambda: (time.sleep(0.05), lambda text: text.endswith("end"))[1])
    generation_starts(stop)

    assert stop("do\nend") is True
    assert stop("do\n") is False
    assert seen["started"]


def test_a_plain_callable_is_left_alone() -> None:
    generation_starts(lambda text: False)  # nothing to signal, nothing raised


def test_a_failed_build_reaches_the_builder_and_the_backend_names_it() -> None:
    stop = LateStopCheck()

    def broken():
        raise ValueError("no lexer")

    with pytest.raises(ValueError):
        stop.build(broken)
    with pytest.raises(BackendError, match="could not be built: no lexer"):
        stop("x")


def test_a_check_never_built_does_not_hang_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lsp.backends.base.STOP_CHECK_BUILD_LIMIT_S", 0.05)
    stop = LateStopCheck()
    started = time.perf_counter()
    with pytest.raises(BackendError, match="never built"):
        stop("x")
    assert time.perf_counter() - started < 2


def test_checks_from_the_worker_see_the_build_from_another_thread() -> None:
    stop = LateStopCheck()
    answers: list[bool] = []
    worker = threading.Thread(target=lambda: answers.extend(stop(t) for t in ("a", "ab", "abc")))
    worker.start()
    time.sleep(0.02)
    stop.build(lambda: lambda text: len(text) >= 2)
    worker.join(5)
    assert answers == [False, True, True]
