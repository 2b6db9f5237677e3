"""Background work yields to completions: idiom diagnostics wait while a completion generates."""

from __future__ import annotations

import asyncio
import threading
import time

from lsp.backends.base import BackendInfo, GenerationResult
from lsp.completion.engine import _Ticket
from lsp.documents import Document, Position
from lsp.idioms.engine import incremental_findings
from lsp.idioms.registry import all_rules
from lsp.server import DIAGNOSTICS_RETRY_S, ElixirLanguageServer
from lsp.syntax.parser import make_parser

URI = "file:///w/lib/a.ex"


async def test_diagnostics_wait_while_a_completion_generates_then_run():
    ls = ElixirLanguageServer()
    ls.engine.documents[URI] = Document(URI, "defmodule A do\n  def f(x), do: x\nend\n", 1)
    analysed: list[int] = []
    ls.idioms.diagnostics = lambda doc, pause: analysed.append(doc.version) or []  # type: ignore[method-assign]
    ls.text_document_publish_diagnostics = lambda params: None  # type: ignore[method-assign]

    ls.engine._latest[(URI, "inline")] = _Ticket("request")  # a completion is in flight
    await ls.publish_diagnostics(URI)
    assert analysed == [] and URI in ls._diagnostic_timers  # postponed, not dropped

    ls.engine._latest.clear()  # the completion finished
    await asyncio.sleep(DIAGNOSTICS_RETRY_S * 3)
    assert analysed == [1]
    assert URI not in ls._diagnostic_timers


class AnswerBackend:
    """Answers every prompt with the same text."""

    def info(self) -> BackendInfo:
        return BackendInfo("fake", "answer", None, 4096)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 1

    def generate(self, prompt, params, should_stop, cancel) -> GenerationResult:
        return GenerationResult(text="x + 1", stop_reason="eos")

    def prefill(self, prompt, cancel) -> GenerationResult:
        return GenerationResult(text="", stop_reason="prefill")

    def close(self) -> None:
        pass


async def test_an_answer_from_the_typed_ahead_cache_leaves_nothing_in_flight():
    """A cache hit once left its request registered: `completing` stayed true and idiom diagnostics
    waited for ever (found by the Neovim client: inline completion, then popup completion there)."""
    ls = ElixirLanguageServer()
    ls.engine.settings.completion.debounce_ms = 0
    ls.engine.settings.completion.prefill = False
    ls.engine.set_backend(AnswerBackend())
    ls.engine.documents[URI] = Document(URI, "defmodule A do\n  def f(x) do\n    \n  end\nend\n", 1)
    cursor = Position(2, 4)
    first = await ls.engine.complete(URI, cursor, invoked=True)
    assert first is not None and first.source == "model" and not ls.engine.completing
    again = await ls.engine.complete(URI, cursor, invoked=True, channel="completion")
    assert again is not None and again.source == "cache"
    assert not ls.engine.completing


class GatedBackend(AnswerBackend):
    """Generates only once `release` is set: a completion that stays in flight as long as a test needs."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def generate(self, prompt, params, should_stop, cancel) -> GenerationResult:
        self.started.set()
        self.release.wait(5)
        return super().generate(prompt, params, should_stop, cancel)


async def test_analysis_already_running_waits_at_its_next_step_while_a_completion_generates():
    ls = ElixirLanguageServer()
    ls.engine.settings.completion.debounce_ms = 0
    ls.engine.settings.completion.prefill = False
    backend = GatedBackend()
    ls.engine.set_backend(backend)
    ls.engine.documents[URI] = Document(URI, "defmodule A do\n  def f(x) do\n    \n  end\nend\n", 1)
    request = asyncio.create_task(ls.engine.complete(URI, Position(2, 4), invoked=True))
    await asyncio.to_thread(backend.started.wait, 5)

    waited = asyncio.create_task(asyncio.to_thread(ls.engine.wait_for_no_requests))
    await asyncio.sleep(0.2)
    assert not waited.done()  # the analysis step is held back while the model generates
    backend.release.set()
    assert (await request) is not None
    started = time.perf_counter()
    await asyncio.wait_for(waited, 2)
    assert time.perf_counter() - started < 1


def test_analysis_pauses_between_steps_and_finds_the_same():
    source = b"defmodule A do\n  def f(xs) do\n    Enum.map(xs, fn x -> x end) |> Enum.count()\n  end\nend\n"
    tree = make_parser().parse(source)
    pauses: list[int] = []
    paused, _ = incremental_findings(all_rules(), tree, source, {}, pause=lambda: pauses.append(1))
    plain, _ = incremental_findings(all_rules(), tree, source, {})
    assert paused == plain and paused
    assert len(pauses) >= len(all_rules())  # at least once per rule


async def test_diagnostics_analysed_before_a_settings_change_are_not_published():
    """The fresh analysis the change schedules may finish first; the stale one must not overwrite it."""
    ls = ElixirLanguageServer()
    ls.engine.documents[URI] = Document(URI, "defmodule A do\n  def f(x), do: x\nend\n", 1)
    published: list[int] = []
    ls.text_document_publish_diagnostics = lambda params: published.append(params.version)  # type: ignore[method-assign]

    def analyse_while_settings_change(doc, pause):
        ls.idioms.rules = tuple(all_rules())  # what configure() does: a new rule list
        return []

    ls.idioms.diagnostics = analyse_while_settings_change  # type: ignore[method-assign]
    await ls.publish_diagnostics(URI)
    assert published == []

    ls.idioms.diagnostics = lambda doc, pause: []  # type: ignore[method-assign]
    await ls.publish_diagnostics(URI)
    assert published == [1]
