"""Background work yields to completions: idiom diagnostics wait while a completion generates."""

from __future__ import annotations

import asyncio

from lsp.backends.base import BackendInfo, GenerationResult
from lsp.completion.engine import _Ticket
from lsp.documents import Document, Position
from lsp.server import DIAGNOSTICS_RETRY_S, ElixirLanguageServer

URI = "file:///w/lib/a.ex"


async def test_diagnostics_wait_while_a_completion_generates_then_run():
    ls = ElixirLanguageServer()
    ls.engine.documents[URI] = Document(URI, "defmodule A do\n  def f(x), do: x\nend\n", 1)
    analysed: list[int] = []
    ls.idioms.diagnostics = lambda doc: analysed.append(doc.version) or []  # type: ignore[method-assign]
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
