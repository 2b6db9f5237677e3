"""A client that chooses UTF-8 columns (Neovim 0.11 offers utf-8 first) gets them: the server announces
the encoding it picked and reads every position in it."""

from __future__ import annotations

import hashlib

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from tests.e2e.conftest import ROOT, SERVER, change, open_doc, status

pytestmark = pytest.mark.slow

LINE = '    IO.puts("héllo 😀 #{name}")'
TEXT = f"defmodule Greeter do\n  def hello(name) do\n{LINE}\n  end\nend\n"


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    capabilities = client_capabilities("neovim@v0.11.0")  # offers utf-8, utf-16, utf-32, in that order
    assert capabilities.general is not None and capabilities.general.position_encodings[0] == "utf-8"
    lsp_client.init_result = await lsp_client.initialize_session(
        types.InitializeParams(capabilities=capabilities, root_uri=ROOT.as_uri())
    )
    yield
    await lsp_client.shutdown_session()


async def test_utf8_columns_are_read_as_utf8(client: LanguageClient):
    assert client.init_result.capabilities.position_encoding == types.PositionEncodingKind.Utf8
    uri = (ROOT / "greeter.ex").as_uri()
    open_doc(client, uri, TEXT)
    # Replace the emoji: UTF-8 columns count bytes (é is 2, 😀 is 4).
    start = len(LINE[: LINE.index("😀")].encode())
    change(client, uri, 2, (2, start), (2, start + 4), "👋")
    expected = TEXT.replace("😀", "👋")
    document = (await status(client, uri))["document"]
    assert document["sha256"] == hashlib.sha256(expected.encode()).hexdigest()
