"""Background work yields to completions: idiom diagnostics wait while a completion generates."""

from __future__ import annotations

import asyncio

from lsp.completion.engine import _Ticket
from lsp.documents import Document
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
