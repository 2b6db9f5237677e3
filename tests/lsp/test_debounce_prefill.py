"""The prompt is evaluated while a request's debounce runs, so the request itself only generates."""

from __future__ import annotations

import asyncio
import threading

from lsp.backends.base import GenerationResult
from lsp.completion.engine import CompletionEngine
from lsp.config import Settings
from lsp.documents import Document, Position
from tests.lsp.test_server_scheduling import AnswerBackend

URI = "file:///w/lib/a.ex"
SOURCE = "defmodule A do\n  def f(x) do\n    \n  end\nend\n"
CURSOR = Position(2, 4)


class RecordingBackend(AnswerBackend):
    """Records what the engine asks of the model, in order, with the cancel event each call got."""

    def __init__(self, prefill_error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, threading.Event]] = []
        self.prefill_error = prefill_error

    def prefill(self, prompt, cancel) -> GenerationResult:
        self.calls.append(("prefill", prompt.text, cancel))
        if self.prefill_error is not None:
            raise self.prefill_error
        return super().prefill(prompt, cancel)

    def generate(self, prompt, params, should_stop, cancel) -> GenerationResult:
        self.calls.append(("generate", prompt.text, cancel))
        return super().generate(prompt, params, should_stop, cancel)


def make_engine(backend: RecordingBackend, debounce_ms: int = 40, early: bool = True) -> tuple[CompletionEngine, list]:
    logs: list[tuple[str, str]] = []
    settings = Settings()
    settings.completion.debounce_ms = debounce_ms
    settings.completion.prefill_during_debounce = early
    settings.completion.speculative = False
    engine = CompletionEngine(settings, log=lambda level, message: logs.append((level, message)))
    engine.set_backend(backend)
    engine.documents[URI] = Document(URI, SOURCE, 1)
    return engine, logs


async def test_the_prompt_is_evaluated_during_the_debounce_then_generated_from():
    backend = RecordingBackend()
    engine, _ = make_engine(backend)
    completion = await engine.complete(URI, CURSOR, invoked=False)
    assert completion is not None and completion.text == "x + 1"
    assert [kind for kind, _, _ in backend.calls] == ["prefill", "generate"]
    assert backend.calls[0][1] == backend.calls[1][1]  # the prompt the request then generates from
    assert engine.stats.debounce_prefills == 1


async def test_no_early_evaluation_without_a_debounce_or_when_turned_off():
    for invoked, debounce_ms, early in ((True, 40, True), (False, 0, True), (False, 40, False)):
        backend = RecordingBackend()
        engine, _ = make_engine(backend, debounce_ms, early)
        assert await engine.complete(URI, CURSOR, invoked=invoked) is not None
        assert [kind for kind, _, _ in backend.calls] == ["generate"], (invoked, debounce_ms, early)
        assert engine.stats.debounce_prefills == 0


async def test_a_newer_request_cancels_the_older_ones_early_evaluation():
    backend = RecordingBackend()
    engine, _ = make_engine(backend, debounce_ms=100)
    older = asyncio.create_task(engine.complete(URI, CURSOR, invoked=False))
    await asyncio.sleep(0.02)  # inside the older request's debounce
    newer = await engine.complete(URI, CURSOR, invoked=True)
    assert await older is None  # superseded
    assert newer is not None
    early = [cancel for kind, _, cancel in backend.calls if kind == "prefill"]
    assert len(early) == 1 and early[0].is_set()
    assert engine.stats.superseded == 1


async def test_a_failing_early_evaluation_is_logged_and_the_request_still_answered():
    backend = RecordingBackend(prefill_error=RuntimeError("kv cache full"))
    engine, logs = make_engine(backend)
    completion = await engine.complete(URI, CURSOR, invoked=False)
    assert completion is not None and completion.text == "x + 1"
    assert ("warning", "evaluating the prompt during the debounce failed: kv cache full") in logs
    assert engine.stats.debounce_prefills == 0


async def test_an_early_evaluation_the_backend_reports_failed_is_not_counted():
    """The remote backend's prefill never raises; it marks a failed warm-up instead."""
    backend = RecordingBackend()
    backend.prefill = lambda prompt, cancel: GenerationResult(text="", stop_reason="prefill", extra={"failed": 1.0})
    engine, _ = make_engine(backend)
    assert await engine.complete(URI, CURSOR, invoked=False) is not None
    assert engine.stats.debounce_prefills == 0
