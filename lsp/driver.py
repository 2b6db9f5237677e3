"""A scripted LSP client that drives the real server over stdio, as an editor would.

Used by `make demo` and the keystroke benchmark; the e2e tests use pytest-lsp. It only speaks the
protocol: every answer comes from the server process.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from lsp.server import STATUS_REQUEST

CURSOR_MARK = "‸"
TIMED_ID_PREFIX = "timed-"

# What VS Code and Neovim announce for the features we use: edits resolved lazily, progress shown.
EDITOR_CAPABILITIES = types.ClientCapabilities(
    text_document=types.TextDocumentClientCapabilities(
        code_action=types.CodeActionClientCapabilities(
            resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
            data_support=True,
        )
    ),
    window=types.WindowClientCapabilities(work_done_progress=True),
)


@dataclass
class Timed:
    text: str
    ms: float
    # Until the response's JSON was parsed, before pygls builds typed objects from it and hands them over
    # through a thread-safe future (~0.3 ms here that an editor's JSON parser does not spend).
    wire_ms: float | None = None


@dataclass
class EditorSession:
    """One server process and the documents this client has open."""

    client: LanguageClient
    versions: dict[str, int] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    messages: list[types.ShowMessageParams] = field(default_factory=list)
    logs: list[types.LogMessageParams] = field(default_factory=list)
    progress: list[types.ProgressParams] = field(default_factory=list)
    diagnostics: dict[str, list[types.Diagnostic]] = field(default_factory=dict)
    stderr_task: asyncio.Task | None = None
    arrivals: dict[str, float] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    async def open(self, path: Path, text: str | None = None) -> str:
        uri = path.resolve().as_uri()
        text = path.read_text(encoding="utf-8") if text is None else text
        self.versions[uri] = 1
        self.texts[uri] = text
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "elixir", 1, text))
        )
        return uri

    def insert(self, uri: str, line: int, character: int, text: str) -> None:
        """Insert `text` at a UTF-16 position (an incremental change, as editors send them)."""
        self.versions[uri] += 1
        position = types.Position(line, character)
        lines = self.texts[uri].split("\n")
        current = lines[line]
        # Mirror the edit locally (UTF-16 columns → code points) so the client knows the text too.
        column = len(current.encode("utf-16-le")[: character * 2].decode("utf-16-le"))
        lines[line] = current[:column] + text + current[column:]
        self.texts[uri] = "\n".join(lines)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=self.versions[uri], uri=uri),
                [types.TextDocumentContentChangePartial(types.Range(position, position), text)],
            )
        )

    async def inline(self, uri: str, line: int, character: int, invoked: bool = True) -> Timed:
        msg_id = f"{TIMED_ID_PREFIX}{next(self._ids)}"
        started = time.perf_counter()
        result = await self.client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, line, character, invoked), msg_id=msg_id
        )
        ms = (time.perf_counter() - started) * 1000
        arrived = self.arrivals.pop(msg_id, None)
        return Timed(first_inline_text(result), ms, None if arrived is None else (arrived - started) * 1000)

    def cursor_hint(self, uri: str, line: int, character: int) -> None:
        """What VS Code does on every cursor move: ask for code actions at the cursor."""
        position = types.Position(line, character)
        self.client.protocol.send_request(
            types.TEXT_DOCUMENT_CODE_ACTION,
            types.CodeActionParams(
                types.TextDocumentIdentifier(uri),
                types.Range(position, position),
                types.CodeActionContext(diagnostics=[]),
            ),
        )

    async def code_actions(
        self, uri: str, start: tuple[int, int], end: tuple[int, int] | None = None, only: list[str] | None = None
    ) -> tuple[list[types.CodeAction], float]:
        """The code actions for a cursor or selection, and how long the server took (ms)."""
        first = types.Position(*start)
        started = time.perf_counter()
        result = await self.client.text_document_code_action_async(
            types.CodeActionParams(
                types.TextDocumentIdentifier(uri),
                types.Range(first, types.Position(*end) if end else first),
                types.CodeActionContext(diagnostics=[], only=only),
            )
        )
        ms = (time.perf_counter() - started) * 1000
        return [a for a in result or [] if isinstance(a, types.CodeAction)], ms

    async def resolve(self, action: types.CodeAction) -> tuple[types.CodeAction, float]:
        started = time.perf_counter()
        resolved = await self.client.code_action_resolve_async(action)
        return resolved, (time.perf_counter() - started) * 1000

    async def status(self, with_prompt: bool = False) -> dict[str, Any]:
        return await fetch_status(self.client.protocol, {"withPrompt": True} if with_prompt else None)

    async def wait_for_prefill(self, timeout_s: float = 30.0, previous: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = await self.status()
            if status["requests"]["prefills"] > previous:
                return status
            await asyncio.sleep(0.05)
        raise TimeoutError("the server did not prefill in time")


def inline_params(uri: str, line: int, character: int, invoked: bool = True) -> types.InlineCompletionParams:
    kind = (
        types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
    )
    return types.InlineCompletionParams(
        context=types.InlineCompletionContext(trigger_kind=kind),
        text_document=types.TextDocumentIdentifier(uri),
        position=types.Position(line, character),
    )


def first_inline_text(result: types.InlineCompletionList | list | None) -> str:
    """The first offered item's text, or "" when nothing was offered."""
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    if not items:
        return ""
    text = items[0].insert_text
    return text if isinstance(text, str) else text.value


async def fetch_status(protocol: Any, params: dict[str, Any] | None = None, timeout_s: float = 60.0) -> dict:
    """`devstralElixir/status` as plain data, once the model has loaded or failed to (it loads after
    `initialized`, so a status asked right after start-up would describe no model yet)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = to_plain(await protocol.send_request_async(STATUS_REQUEST, params))
        if status["model"] or status["modelError"]:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not load its model in time")
        await asyncio.sleep(0.05)


async def _forward(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and (line := await stream.readline()):
        sys.stderr.write(f"[server stderr] {line.decode(errors='replace')}")


def to_plain(value: Any) -> Any:
    """pygls hands untyped JSON objects back as named tuples; turn them into plain data."""
    if hasattr(value, "_asdict"):
        return {k: to_plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def server_command() -> list[str]:
    return [
        sys.executable,
        "-m",
        "lsp",
        *(["--log-file", os.environ["DEVSTRAL_LOG"]] if os.environ.get("DEVSTRAL_LOG") else []),
    ]


async def start_session(root: Path, settings: dict[str, Any] | None = None) -> EditorSession:
    client = LanguageClient("devstral-elixir-driver", "0.1")
    session = EditorSession(client)

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def on_message(params: types.ShowMessageParams) -> None:
        session.messages.append(params)
        print(f"[server] {params.message}", file=sys.stderr)

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def on_log(params: types.LogMessageParams) -> None:
        session.logs.append(params)

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def on_progress_create(params: types.WorkDoneProgressCreateParams) -> None:
        return None

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
        session.diagnostics[params.uri] = list(params.diagnostics)

    @client.feature(types.PROGRESS)
    def on_progress(params: types.ProgressParams) -> None:
        session.progress.append(params)

    structure = client.protocol.structure_message

    def stamp_arrival(data: dict[str, Any]) -> Any:
        # Called for each parsed JSON object, the message itself last: a timed response is stamped here.
        msg_id = data.get("id")
        if isinstance(msg_id, str) and msg_id.startswith(TIMED_ID_PREFIX) and "jsonrpc" in data:
            session.arrivals[msg_id] = time.perf_counter()
        return structure(data)

    client.protocol.structure_message = stamp_arrival  # type: ignore[method-assign]
    command = server_command()
    await client.start_io(command[0], *command[1:], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # pygls pipes the server's stderr but never reads it; a full pipe would block the server.
    session.stderr_task = asyncio.create_task(_forward(client._server.stderr))
    await client.initialize_async(
        types.InitializeParams(
            capabilities=EDITOR_CAPABILITIES,
            root_uri=root.resolve().as_uri(),
            initialization_options=settings or {},
        )
    )
    client.initialized(types.InitializedParams())
    await session.status()  # returns once the model has loaded (or failed to)
    return session


async def stop_session(session: EditorSession) -> None:
    await session.client.shutdown_async(None)
    session.client.exit(None)
    await session.client.stop()


def strip_markers(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Remove cursor markers; return the clean text and each marker's (line, UTF-16 column)."""
    positions: list[tuple[int, int]] = []
    clean_lines = []
    for line_no, line in enumerate(text.split("\n")):
        while CURSOR_MARK in line:
            column = line.index(CURSOR_MARK)
            positions.append((line_no, len(line[:column].encode("utf-16-le")) // 2))
            line = line[:column] + line[column + 1 :]
        clean_lines.append(line)
    return "\n".join(clean_lines), positions


def iter_examples(folder: Path) -> Iterator[Path]:
    yield from sorted(folder.rglob("*.ex"))


def _utf16_offset(text: str, position: types.Position) -> int:
    """Code-point offset into `text` of an LSP position."""
    lines = text.split("\n")
    before = sum(len(line) + 1 for line in lines[: position.line])
    line = lines[position.line] if position.line < len(lines) else ""
    return before + len(line.encode("utf-16-le")[: position.character * 2].decode("utf-16-le"))


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP text edits (all relative to the original text) as an editor does."""
    spans = [(_utf16_offset(text, e.range.start), _utf16_offset(text, e.range.end), e.new_text) for e in edits]
    for start, end, new_text in sorted(spans, reverse=True):
        text = text[:start] + new_text + text[end:]
    return text


def workspace_edits_for(edit: types.WorkspaceEdit | None, uri: str) -> list[types.TextEdit]:
    """The text edits a workspace edit makes to one document (documentChanges or changes)."""
    if edit is None:
        return []
    edits: list[types.TextEdit] = []
    for change in edit.document_changes or []:
        if isinstance(change, types.TextDocumentEdit) and change.text_document.uri == uri:
            edits.extend(change.edits)  # type: ignore[arg-type]
    edits.extend((edit.changes or {}).get(uri, []))
    return edits
