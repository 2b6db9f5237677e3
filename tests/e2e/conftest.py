"""Shared pieces for end-to-end tests: the real server over stdio, driven by pytest-lsp."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from lsp.driver import fetch_status, first_inline_text, inline_params

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lsp"])
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "lib"


async def start(client: LanguageClient, options: dict[str, Any] | None = None) -> types.InitializeResult:
    return await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=ROOT.as_uri(),
            initialization_options=options or {},
        )
    )


async def status(client: LanguageClient, uri: str | None = None) -> dict[str, Any]:
    return await fetch_status(client.protocol, {"uri": uri} if uri else None)


def open_doc(client: LanguageClient, uri: str, text: str, version: int = 1) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "elixir", version, text))
    )


def change(
    client: LanguageClient, uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str
):
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [
                types.TextDocumentContentChangePartial(
                    types.Range(types.Position(*start), types.Position(*end)), text
                )
            ],
        )
    )


async def inline(client: LanguageClient, uri: str, line: int, character: int, invoked: bool = True) -> str:
    return first_inline_text(
        await client.text_document_inline_completion_async(inline_params(uri, line, character, invoked))
    )
