"""The main job end to end: the real server over stdio, the real embedded model, a real LSP client."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from lsp.documents import utf16_to_char_index
from lsp.driver import fetch_status, inline_params, strip_markers
from lsp.prompt import PROMPT_FORMAT_VERSION
from lsp.syntax.parser import count_errors, make_parser
from tests.e2e.conftest import EXAMPLES, SERVER, change, inline, open_doc, start, status

pytestmark = pytest.mark.slow

PRICING = EXAMPLES / "pricing.ex"


@pytest_lsp.fixture(config=SERVER, scope="module")
async def client(lsp_client: LanguageClient):
    # Speculation off: these tests count model calls and cache hits exactly.
    result = await start(lsp_client, {"completion": {"speculative": False, "debounceMs": 30}})
    lsp_client.init_result = result
    yield
    await lsp_client.shutdown_session()


def _open_example(
    client: LanguageClient, path=PRICING, fresh: bool = False
) -> tuple[str, str, list[tuple[int, int]]]:
    """Open an example; `fresh` makes its text unique, so no cache (KV or typed-ahead) knows it."""
    text, cursors = strip_markers(path.read_text(encoding="utf-8"))
    if fresh:
        # Unique comments at the top (nothing of the prompt is in the KV cache) and just above the
        # first cursor (nothing near it is in the typed-ahead cache).
        lines = text.split("\n")
        lines.insert(cursors[0][0], f"    # {uuid.uuid4().hex}")
        lines.insert(0, f"# {uuid.uuid4().hex}")
        text = "\n".join(lines)
        cursors = [(line + 2, column) for line, column in cursors]
    uri = f"file:///tmp/{uuid.uuid4().hex}/{path.name}"
    open_doc(client, uri, text)
    return uri, text, cursors


def _insert(text: str, line: int, column: int, completion: str) -> str:
    lines = text.split("\n")
    lines[line] = lines[line][:column] + completion + lines[line][column:]
    return "\n".join(lines)


async def test_capabilities_advertise_inline_completion_and_incremental_sync(client: LanguageClient):
    caps = client.init_result.capabilities
    assert caps.inline_completion_provider
    assert caps.completion_provider is not None
    sync = caps.text_document_sync
    kind = sync.change if isinstance(sync, types.TextDocumentSyncOptions) else sync
    assert kind == types.TextDocumentSyncKind.Incremental


async def test_status_reports_embedded_model_and_prompt_format(client: LanguageClient):
    info = await status(client)
    assert info["modelError"] is None
    assert info["backend"] == "llama_cpp"
    assert info["modelPath"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert info["promptFormat"] == PROMPT_FORMAT_VERSION
    # SmolLM2 has no FIM tokens: prefix-only prompts.
    assert info["fim"] is False


async def test_inline_completions_at_example_cursors_never_worsen_the_parse(client: LanguageClient):
    before = await status(client)
    offered = []
    for path in sorted(EXAMPLES.glob("*.ex")):
        uri, text, cursors = _open_example(client, path)
        parser = make_parser()
        for line, column in cursors:
            completion = await inline(client, uri, line, column)
            if not completion:
                continue
            offered.append(completion)
            assert completion == completion.rstrip(), "trailing whitespace"
            old_errors = count_errors(parser.parse(text.encode()).root_node)
            new_errors = count_errors(
                parser.parse(_insert(text, line, column, completion).encode()).root_node
            )
            assert new_errors <= old_errors, completion
    after = await status(client)
    # The embedded model is weak, but at these cursors it does offer code.
    assert offered, "no completion at any example cursor"
    assert after["requests"]["served"] > before["requests"]["served"]
    assert after["requests"]["latencyMs"]["p50"] is not None


async def test_mid_line_completion_is_one_line(client: LanguageClient):
    uri, text, _ = _open_example(client)
    lines = text.split("\n")
    line = next(i for i, value in enumerate(lines) if "customer = Customer.fetch!(customer_id)" in value)
    column = lines[line].index("Customer.fetch!")
    completion = await inline(client, uri, line, column)
    assert "\n" not in completion


async def test_incremental_edits_keep_server_text_and_tree_in_step(client: LanguageClient):
    uri, text, _ = _open_example(client)
    edits = [
        ((0, 0), (0, 0), "# café ☕ 😀\n"),
        ((1, 10), (1, 15), "Shop"),
        ((3, 0), (5, 0), ""),
        ((2, 3), (2, 3), "é"),
    ]
    version = 1
    for start_pos, end_pos, new_text in edits:
        version += 1
        change(client, uri, version, start_pos, end_pos, new_text)
        lines = text.split("\n")
        # Apply the same edit locally; UTF-16 == code points here except for 😀 on line 0, edited first.
        start_off = sum(len(x) + 1 for x in lines[: start_pos[0]]) + utf16_to_char_index(
            lines[start_pos[0]], start_pos[1]
        )
        end_off = sum(len(x) + 1 for x in lines[: end_pos[0]]) + utf16_to_char_index(
            lines[end_pos[0]], end_pos[1]
        )
        text = text[:start_off] + new_text + text[end_off:]
    info = await status(client, uri)
    doc = info["document"]
    assert doc["version"] == version
    assert doc["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert doc["treeMatchesReparse"] is True


async def test_typing_along_a_completion_is_served_from_the_cache(client: LanguageClient):
    uri, _text, cursors = _open_example(client)
    line, column = cursors[0]
    completion = await inline(client, uri, line, column)
    if len(completion.strip()) < 2:
        pytest.skip(f"the model offered too little to type along: {completion!r}")
    before = await status(client)
    change(client, uri, 2, (line, column), (line, column), completion[0])
    rest = await inline(client, uri, line, column + 1, invoked=False)
    after = await status(client)
    assert rest == completion[1:]
    assert after["requests"]["fromCache"] == before["requests"]["fromCache"] + 1
    # No model call: the prompt token counters did not move.
    assert after["requests"]["promptTokens"] == before["requests"]["promptTokens"]


async def test_keystrokes_reuse_the_kv_cache(client: LanguageClient):
    uri, _text, cursors = _open_example(client, fresh=True)
    line, column = cursors[0]
    await inline(client, uri, line, column)
    before = await status(client)
    version = 1
    # Characters no completion starts with, so every keystroke is a model call.
    for char in "xqz":
        version += 1
        change(client, uri, version, (line, column), (line, column), char)
        column += 1
        await inline(client, uri, line, column)
    after = await status(client)
    prompt = after["requests"]["promptTokens"] - before["requests"]["promptTokens"]
    reused = after["requests"]["reusedTokens"] - before["requests"]["reusedTokens"]
    assert prompt > 0
    assert reused / prompt >= 0.9, (reused, prompt)


async def test_the_debounce_evaluates_the_prompt_so_the_request_only_generates(client: LanguageClient):
    uri, _text, cursors = _open_example(client, fresh=True)
    line, column = cursors[0]
    typed = "total = "
    change(client, uri, 2, (line, column), (line, column), typed)
    before = await status(client)
    await inline(client, uri, line, column + len(typed), invoked=False)
    debounced = await fetch_status(client.protocol, {"withPrompt": True})
    # The fresh text (hundreds of new prompt tokens) was evaluated during the 30 ms debounce, which the
    # request then waited for: it generated from the logits already there.
    assert debounced["requests"]["debouncePrefills"] == before["requests"]["debouncePrefills"] + 1
    assert debounced["lastModelCall"]["evaluatedTokens"] == 0
    assert debounced["lastModelCall"]["promptTokens"] > 100

    # An invoked request has no debounce: what was typed since is evaluated by the request itself.
    change(client, uri, 3, (line, column + len(typed)), (line, column + len(typed)), "price")
    await inline(client, uri, line, column + len(typed) + len("price"), invoked=True)
    invoked = await fetch_status(client.protocol, {"withPrompt": True})
    assert invoked["requests"]["debouncePrefills"] == debounced["requests"]["debouncePrefills"]
    assert invoked["lastModelCall"]["evaluatedTokens"] > 0


async def test_completion_request_gives_one_single_line_item(client: LanguageClient):
    uri, _text, cursors = _open_example(client)
    line, column = cursors[0]
    result = await client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(uri), types.Position(line, column))
    )
    assert isinstance(result, types.CompletionList)
    assert len(result.items) <= 1
    for item in result.items:
        assert "\n" not in item.insert_text
        assert item.text_edit.range.start == types.Position(line, column)


async def test_newer_request_supersedes_older_one(client: LanguageClient):
    uri, _text, cursors = _open_example(client, fresh=True)
    line, column = cursors[0]
    before = await status(client)
    first = client.text_document_inline_completion_async(inline_params(uri, line, column, invoked=False))
    second = client.text_document_inline_completion_async(inline_params(uri, line, column, invoked=True))
    first_result, second_result = await asyncio.gather(first, second)
    after = await status(client)
    assert list(first_result.items) == []
    assert isinstance(second_result, types.InlineCompletionList)
    assert after["requests"]["superseded"] >= before["requests"]["superseded"] + 1


async def test_cancel_request_stops_generation_and_server_keeps_serving(client: LanguageClient):
    uri, _text, cursors = _open_example(client, fresh=True)
    line, column = cursors[0]
    before = await status(client)
    msg_id = f"cancel-{uuid.uuid4().hex}"
    # pytest-lsp's send_request_async is a coroutine: schedule it so the request leaves now.
    future = asyncio.ensure_future(
        client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, line, column), msg_id=msg_id
        )
    )
    await asyncio.sleep(0.05)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
    with pytest.raises(Exception, match="cancel"):
        await future
    after = await status(client)
    assert after["requests"]["cancelled"] == before["requests"]["cancelled"] + 1
    # Still serving.
    assert isinstance(await inline(client, uri, line, column), str)
