"""The scripted client behind `make demo` and the keystroke benchmark, against the real server and model."""

from __future__ import annotations

import pytest

from lsp.driver import start_session, stop_session
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.slow

TEXT = "defmodule Cart do\n  def total(items) do\n    \n  end\nend\n"


async def test_an_inline_completion_is_timed_as_the_client_the_wire_and_the_server_see_it(tmp_path):
    settings = {"completion": {"debounceMs": 0, "maxTokens": 8, "speculative": False, "typedAheadCache": False}}
    session = await start_session(ROOT / "examples", settings)
    try:
        uri = await session.open(tmp_path / "cart.ex", TEXT)
        session.cursor_hint(uri, 2, 4)  # an untimed request whose answer may arrive meanwhile
        for _ in range(2):
            answer = await session.inline(uri, 2, 4)
            call = (await session.status(with_prompt=True))["lastModelCall"]
            assert answer.wire_ms is not None and 0 < answer.wire_ms <= answer.ms
            # Both include the model's time in the server: the wire time is the server's answer plus pipes.
            model_ms = call["promptMs"] + call["generationMs"]
            assert answer.wire_ms >= call["requestMs"] >= model_ms + call["promptBuildMs"] + call["postprocessMs"]
            assert call["promptBuildMs"] > 0 and call["postprocessMs"] > 0
        assert session.arrivals == {}, "only timed requests are stamped, and each stamp is used once"
    finally:
        await stop_session(session)
