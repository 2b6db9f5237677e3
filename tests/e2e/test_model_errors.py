"""A missing, corrupt or wrong model file: the server stays up, says so once, completions answer empty."""

from __future__ import annotations

import atexit
import shutil
import struct
import uuid
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import SERVER, inline, open_doc, start, status

pytestmark = pytest.mark.slow

TEXT = "defmodule A do\n  def f(x) do\n    \n  end\nend\n"


def _gguf_string(value: str) -> bytes:
    data = value.encode()
    return struct.pack("<Q", len(data)) + data


def write_wrong_architecture_gguf(path: Path) -> None:
    """A well-formed GGUF v3 header whose architecture llama.cpp does not know, and no tensors."""
    kv = _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string("not-a-real-arch")
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv)


def bad_models(tmp: Path) -> dict[str, Path]:
    corrupt = tmp / "corrupt.gguf"
    corrupt.write_bytes(b"\x00not a model at all" * 100)
    wrong = tmp / "wrong-arch.gguf"
    write_wrong_architecture_gguf(wrong)
    return {"missing": tmp / "does-not-exist.gguf", "corrupt": corrupt, "wrong-arch": wrong}


TMP = Path("/tmp") / f"devstral-elixir-models-{uuid.uuid4().hex}"
TMP.mkdir(parents=True, exist_ok=True)
# Made at import (the fixture's parameters name these files), so removed at exit rather than by a fixture.
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
MODELS = bad_models(TMP)


@pytest_lsp.fixture(config=SERVER, params=sorted(MODELS))
async def client(lsp_client: LanguageClient, request):
    lsp_client.case = request.param
    # A bad setting too: it is reported by name and the server carries on with the default.
    await start(
        lsp_client, {"model": {"path": str(MODELS[request.param])}, "completion": {"debounceMs": "fast"}}
    )
    yield
    await lsp_client.shutdown_session()


async def _wait_for_error_message(client: LanguageClient) -> list[types.ShowMessageParams]:
    for _ in range(200):
        errors = [m for m in client.messages if m.type == types.MessageType.Error]
        if errors:
            return errors
        await client.protocol.send_request_async("devstralElixir/status", None)
    raise AssertionError("no window/showMessage error arrived")


async def test_bad_model_is_reported_once_and_nothing_else_breaks(client: LanguageClient):
    errors = await _wait_for_error_message(client)
    assert len(errors) == 1
    assert str(MODELS[client.case]) in errors[0].message

    uri = "file:///tmp/bad-model/a.ex"
    open_doc(client, uri, TEXT)
    assert await inline(client, uri, 2, 4) == ""
    completion = await client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(uri), types.Position(2, 4))
    )
    assert list(completion.items) == []

    info = await status(client, uri)
    assert str(MODELS[client.case]) in info["modelError"]
    assert info["document"]["parseErrors"] == 0
    # Still exactly one message after further requests.
    assert len([m for m in client.messages if m.type == types.MessageType.Error]) == 1
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert any("completion.debounceMs" in message for message in warnings)
    # The error is logged too (window/logMessage at the default level, info).
    assert any(log.type == types.MessageType.Error for log in client.log_messages)
