"""The server with `model.backend = openai_compat` against a local server speaking the real wire format."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_lsp
from pytest_lsp import LanguageClient

from tests.e2e.conftest import SERVER, inline, open_doc, start, status
from tests.lsp.test_openai_compat import FakeServer, Handler, chunk, running

pytestmark = pytest.mark.slow

FIM = {"fimPrefix": "<|fim_prefix|>", "fimSuffix": "<|fim_suffix|>", "fimMiddle": "<|fim_middle|>"}
TEXT = "defmodule Shop.Pricing do\n  def percent_off(amount, percent) do\n    \n  end\nend\n"


def respond(handler: Handler, body: dict[str, Any]) -> None:
    if not body.get("stream"):  # prefill (max_tokens 0)
        handler.send_json(200, {"choices": [{"text": "", "index": 0, "finish_reason": "length"}]})
        return
    handler.start_sse()
    for piece in ["div(amount", " * (100 - percent)", ", 100)\n  end\nend\n\ndefmodule Junk do"]:
        handler.send_event(chunk(piece))
    handler.send_event(chunk("", "stop", timings={"prompt_n": 3, "cache_n": 40, "predicted_n": 9}))
    handler.end_sse()


@pytest.fixture(scope="module")
def fake() -> Any:
    with running() as srv:
        srv.respond(respond)
        yield srv


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, fake: FakeServer):
    await start(
        lsp_client,
        {
            "model": {"backend": "openai_compat", "url": fake.url, "name": "qwen-coder", **FIM},
            "completion": {"speculative": False, "prefill": False},
        },
    )
    yield
    await lsp_client.shutdown_session()


async def test_fim_prompt_goes_over_http_and_the_answer_is_post_processed(client: LanguageClient, fake):
    info = await status(client)
    assert info["backend"] == "openai_compat"
    assert info["fim"] is True

    uri = "file:///tmp/openai/pricing.ex"
    open_doc(client, uri, TEXT)
    completion = await inline(client, uri, 2, 4)
    # The function's `end` is already in the suffix: the completion stops inside the body.
    assert completion == "div(amount * (100 - percent), 100)"

    body = fake.requests[-1].body
    assert body["model"] == "qwen-coder"
    assert body["stream"] is True
    prompt = body["prompt"]
    # SPM order: suffix first, then the prefix that ends at the cursor, then the middle token.
    assert prompt.index("<|fim_suffix|>") < prompt.index("<|fim_prefix|>") < prompt.index("<|fim_middle|>")
    assert prompt.endswith("def percent_off(amount, percent) do\n    <|fim_middle|>")
    assert "\n  end\nend\n" in prompt.split("<|fim_suffix|>", 1)[1].split("<|fim_prefix|>", 1)[0]

    after = await status(client)
    assert after["requests"]["served"] == 1
    assert after["lastPrefill"] is None
