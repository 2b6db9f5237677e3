"""The language server: wiring only. Logic lives in lsp.completion, lsp.actions, lsp.idioms, lsp.documents
and lsp.models."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import threading
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from lsp import __version__
from lsp.actions.model_action import run_model_rewrite
from lsp.actions.service import FIX_ALL_KIND, IdiomService, action_data, workspace_edit
from lsp.backends.base import BackendError
from lsp.completion.engine import CompletionEngine, uri_to_path
from lsp.config import LOG_LEVELS, Settings, parse_settings
from lsp.documents import Document, Position
from lsp.hotswap import ModelManager, pin_argument
from lsp.prompt import PROMPT_FORMAT_VERSION
from lsp.registry import RegistryError
from lsp.syntax.parser import count_errors, make_parser

STATUS_REQUEST = "devstralElixir/status"
PIN_VERSION_REQUEST = "devstralElixir/pinVersion"
PIN_VERSION_COMMAND = "devstralElixir.pinVersion"
ELIXIR_LANGUAGES = {"elixir", "eelixir", "ex", "exs"}
DIAGNOSTICS_RETRY_S = 0.1  # a completion is generating: look again shortly
_MESSAGE_TYPES = {
    "error": types.MessageType.Error,
    "warning": types.MessageType.Warning,
    "info": types.MessageType.Info,
    "debug": types.MessageType.Log,
}

logger = logging.getLogger(__name__)


class ElixirLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("devstral-elixir-lsp", __version__)
        self.settings = Settings()
        self.engine = CompletionEngine(self.settings, self.log)
        self.models = ModelManager(self.engine, self.show, self.log)
        self.idioms = IdiomService(self.log)
        self._diagnostic_timers: dict[str, asyncio.TimerHandle] = {}
        self._progress_ids = itertools.count(1)

    def log(self, level: str, message: str) -> None:
        """window/logMessage, filtered by the 'logLevel' setting."""
        logger.log(logging.DEBUG if level == "debug" else getattr(logging, level.upper()), message)
        if LOG_LEVELS.index(level) <= LOG_LEVELS.index(self.settings.log_level):
            self.window_log_message(types.LogMessageParams(_MESSAGE_TYPES[level], message))

    def show(self, level: str, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(_MESSAGE_TYPES[level], f"DevstralElixir: {message}"))

    def apply_settings(self, raw: Any) -> bool:
        """Take new settings; True when the model must be reloaded."""
        settings, problems = parse_settings(raw)
        for problem in problems:
            self.show("warning", problem)
        reload = settings.model != self.settings.model or self.engine.backend is None
        self.settings = settings
        self.engine.settings = settings
        for problem in self.idioms.configure(settings.idioms, self.engine.root):
            self.show("warning", problem)
        self.log(
            "info",
            f"idioms: {len(self.idioms.rules)} rules for Elixir {'.'.join(map(str, self.idioms.elixir_version))} "
            f"({self.idioms.version_source})",
        )
        for uri in self.engine.documents:
            self.schedule_diagnostics(uri, delay_s=0)
        return reload

    def schedule_diagnostics(self, uri: str, delay_s: float | None = None) -> None:
        """Publish idiom diagnostics once edits pause (they never compete with typing)."""
        timer = self._diagnostic_timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        delay = self.settings.idioms.diagnostics_debounce_ms / 1000 if delay_s is None else delay_s
        self._diagnostic_timers[uri] = loop.call_later(
            delay, lambda: loop.create_task(self.publish_diagnostics(uri))
        )

    async def publish_diagnostics(self, uri: str) -> None:
        self._diagnostic_timers.pop(uri, None)
        doc = self.engine.documents.get(uri)
        if doc is None:
            return
        if self.engine.completing:
            # Whole-file analysis holds the GIL for milliseconds: never while a completion generates.
            self.schedule_diagnostics(uri, delay_s=DIAGNOSTICS_RETRY_S)
            return
        rules = self.idioms.rules
        try:
            snapshot = doc.snapshot()
            diagnostics = await asyncio.to_thread(
                self.idioms.diagnostics, snapshot, self.engine.wait_for_no_requests
            )
        except Exception as exc:  # a faulty rule must not take the server down
            logger.exception("idiom diagnostics failed")
            self.log("error", f"idiom diagnostics failed for {uri}: {exc}")
            return
        # A settings change during the analysis scheduled a fresh one; this set may list a disabled rule.
        if self.engine.documents.get(uri) is doc and self.idioms.rules is rules:
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, version=snapshot.version, diagnostics=diagnostics)
            )

    def client_resolves_edits(self) -> bool:
        caps = self.client_capabilities.text_document
        action_caps = caps.code_action if caps is not None else None
        support = action_caps.resolve_support if action_caps is not None else None
        return support is not None and "edit" in support.properties

    def client_shows_progress(self) -> bool:
        window = self.client_capabilities.window
        return bool(window is not None and window.work_done_progress)

    async def resolve_model_action(self, action: types.CodeAction) -> types.CodeAction:
        data = action_data(action)
        doc = self.engine.documents.get(str(data.get("uri")))
        if doc is None or data.get("version") != doc.version:
            action.disabled = types.CodeActionDisabled(reason="the document changed; ask for code actions again")
            return action
        cancel = threading.Event()
        token = f"devstral-elixir-rewrite-{next(self._progress_ids)}"
        progress = self.client_shows_progress()
        if progress:
            await self.work_done_progress.create_async(token)
            self.work_done_progress.tokens[token].add_done_callback(lambda _future: cancel.set())
            self.work_done_progress.begin(
                token, types.WorkDoneProgressBegin(title="Make idiomatic (model)", cancellable=True)
            )

        def report(message: str) -> None:
            if progress:
                self.work_done_progress.report(token, types.WorkDoneProgressReport(message=message))

        try:
            outcome = await run_model_rewrite(
                self.engine, self.idioms, doc, int(data["start"]), int(data["end"]), report, cancel
            )
        except asyncio.CancelledError:
            cancel.set()
            raise
        finally:
            if progress:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))
                self.work_done_progress.tokens.pop(token, None)
        if outcome.edits:
            action.edit = workspace_edit(doc, outcome.edits)
        else:
            self.show("info", f"Make idiomatic (model): no edit, {outcome.message}")
            action.disabled = types.CodeActionDisabled(reason=outcome.message)
        self.log("debug", f"model rewrite: {outcome.message}; generated {outcome.generated!r}")
        return action

    async def load_model(self) -> None:
        await self.models.configure(self.settings.model, self.engine.root)

    async def pin_version(self, version: Any) -> dict[str, Any]:
        """`devstralElixir/pinVersion`; failures become error responses that name the version."""
        try:
            return await self.models.pin_version(version)
        except RegistryError as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc
        except BackendError as exc:
            raise JsonRpcInternalError(str(exc)) from exc

    def status(self, uri: str | None = None, with_prompt: bool = False, with_versions: bool = False) -> dict[str, Any]:
        """`devstralElixir/status`; with a document URI it also describes that document, `withPrompt`
        adds the last model call's prompt, `withVersions` the registry's versions."""
        backend = self.engine.backend
        info = backend.info() if backend is not None else None
        prefill = self.engine.last_prefill
        return {
            "version": __version__,
            "promptFormat": PROMPT_FORMAT_VERSION,
            "backend": info.backend if info else self.settings.model.backend,
            "model": info.model if info else None,
            "modelPath": str(getattr(backend, "model_path", "")) or None,
            "fim": info.fim is not None if info else None,
            "modelPromptFormat": info.prompt_format if info else None,
            "modelError": self.models.model_error,
            "registry": self.models.registry_status(with_versions),
            "documents": len(self.engine.documents),
            "requests": self.engine.stats.as_dict(),
            "lastPrefill": None
            if prefill is None
            else {
                "promptTokens": prefill.prompt_tokens,
                "evaluatedTokens": prefill.evaluated_tokens,
                "reusedTokens": prefill.reused_tokens,
                "ms": round(prefill.prompt_ms, 1),
                "stopReason": prefill.stop_reason,
            },
            "document": None if uri is None else document_status(self.engine.documents.get(uri)),
            "lastModelCall": last_model_call(self.engine) if with_prompt else None,
        }


def document_status(doc: Document | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {
        "version": doc.version,
        "sha256": hashlib.sha256(doc.source).hexdigest(),
        "parseErrors": count_errors(doc.tree.root_node),
        # The incrementally edited tree must equal a fresh parse of the same text.
        "treeMatchesReparse": str(doc.tree.root_node) == str(make_parser().parse(doc.source).root_node),
    }


def last_model_call(engine: CompletionEngine) -> dict[str, Any] | None:
    if engine.last_model_call is None:
        return None
    call = engine.last_model_call
    prompt, result = call.prompt, call.result
    return {
        "segments": [[segment.text, segment.special] for segment in prompt.segments],
        "text": result.text,
        "promptTokens": result.prompt_tokens,
        "reusedTokens": result.reused_tokens,
        "evaluatedTokens": result.evaluated_tokens,
        "generatedTokens": result.generated_tokens,
        "promptMs": round(result.prompt_ms, 2),
        "generationMs": round(result.generation_ms, 2),
        "stopReason": result.stop_reason,
        **{
            key: None if value is None else round(value, 3)
            for key, value in (
                ("promptBuildMs", call.prompt_build_ms),
                ("postprocessMs", call.postprocess_ms),
                ("requestMs", call.request_ms),
            )
        },
    }


server = ElixirLanguageServer()


def _param(params: Any, name: str) -> Any:
    """A custom request's parameter: pygls hands over unknown params as an object, or a dict."""
    return getattr(params, name, None) or (params.get(name) if isinstance(params, dict) else None)


def _position(position: types.Position) -> Position:
    return Position(position.line, position.character)


def _is_elixir(uri: str, language_id: str | None = None) -> bool:
    return (language_id or "").lower() in ELIXIR_LANGUAGES or uri.endswith((".ex", ".exs"))


@server.feature(types.INITIALIZE)
def initialize(ls: ElixirLanguageServer, params: types.InitializeParams) -> None:
    root = params.root_uri or (params.workspace_folders[0].uri if params.workspace_folders else None)
    ls.engine.root = Path(uri_to_path(root)) if root else None
    ls.apply_settings(params.initialization_options)


@server.feature(types.INITIALIZED)
async def initialized(ls: ElixirLanguageServer, params: types.InitializedParams) -> None:
    await ls.load_model()
    ls.models.start_watching()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(
    ls: ElixirLanguageServer, params: types.DidChangeConfigurationParams
) -> None:
    if params.settings is not None and ls.apply_settings(params.settings):
        await ls.load_model()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: ElixirLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    item = params.text_document
    if not _is_elixir(item.uri, item.language_id):
        return
    # pygls gives the client's string when it picked one of the client's, else the enum of its default.
    negotiated = ls.workspace.position_encoding or types.PositionEncodingKind.Utf16
    encoding = negotiated.value if isinstance(negotiated, types.PositionEncodingKind) else str(negotiated)
    ls.engine.documents[item.uri] = Document(item.uri, item.text, item.version, encoding=encoding)
    ls.schedule_diagnostics(item.uri, delay_s=0)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: ElixirLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    doc = ls.engine.documents.get(params.text_document.uri)
    if doc is None:
        return
    cursor = None
    for change in params.content_changes:
        if isinstance(change, types.TextDocumentContentChangePartial):
            doc.apply_change(_position(change.range.start), _position(change.range.end), change.text)
            cursor = doc.position_of(
                doc.byte_offset(_position(change.range.start)) + len(change.text.encode())
            )
        else:
            doc.replace_all(change.text, doc.version)
    doc.version = params.text_document.version
    if cursor is not None:
        ls.engine.note_cursor(doc.uri, cursor)
    ls.schedule_diagnostics(doc.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: ElixirLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.engine.documents.pop(uri, None)
    ls.idioms.forget(uri)
    timer = ls._diagnostic_timers.pop(uri, None)
    if timer is not None:
        timer.cancel()
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(
    ls: ElixirLanguageServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList | None:
    invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
    completion = await ls.engine.complete(params.text_document.uri, _position(params.position), invoked)
    if completion is None or not completion.text:
        return types.InlineCompletionList(items=[])
    position = params.position
    item = types.InlineCompletionItem(
        insert_text=completion.text, range=types.Range(start=position, end=position)
    )
    return types.InlineCompletionList(items=[item])


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "|"]))
async def completion(ls: ElixirLanguageServer, params: types.CompletionParams) -> types.CompletionList:
    invoked = params.context is None or params.context.trigger_kind == types.CompletionTriggerKind.Invoked
    result = await ls.engine.complete(
        params.text_document.uri, _position(params.position), invoked, channel="popup"
    )
    line = result.text.split("\n", 1)[0].rstrip() if result else ""
    if not line.strip():
        return types.CompletionList(is_incomplete=True, items=[])
    item = types.CompletionItem(
        label=line.strip(),
        kind=types.CompletionItemKind.Text,
        detail="DevstralElixir",
        insert_text=line,
        text_edit=types.TextEdit(types.Range(params.position, params.position), line),
        filter_text=line,
        sort_text="0",
    )
    return types.CompletionList(is_incomplete=True, items=[item])


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(
        code_action_kinds=[
            types.CodeActionKind.QuickFix,
            types.CodeActionKind.RefactorRewrite,
            types.CodeActionKind.SourceFixAll,
            FIX_ALL_KIND,
        ],
        resolve_provider=True,
    ),
)
def code_action(ls: ElixirLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    doc = ls.engine.documents.get(params.text_document.uri)
    if doc is None:
        return []
    # Editors ask for code actions whenever the cursor moves: that is the "cursor rests" signal that
    # starts an idle prefill.
    ls.engine.note_cursor(doc.uri, _position(params.range.end))
    start = doc.byte_offset(_position(params.range.start))
    end = doc.byte_offset(_position(params.range.end))
    only = params.context.only if params.context is not None else None
    return ls.idioms.actions(
        doc, start, end, only, ls.client_resolves_edits(), model_available=ls.engine.backend is not None
    )


@server.feature(types.CODE_ACTION_RESOLVE)
async def code_action_resolve(ls: ElixirLanguageServer, action: types.CodeAction) -> types.CodeAction:
    data = action_data(action)
    if data.get("action") == "model":
        return await ls.resolve_model_action(action)
    doc = ls.engine.documents.get(str(data.get("uri")))
    if doc is None:
        action.disabled = types.CodeActionDisabled(reason="the document is not open")
        return action
    return await asyncio.to_thread(ls.idioms.resolve, doc.snapshot(), action)


@server.feature(STATUS_REQUEST)
def status(ls: ElixirLanguageServer, params: Any) -> dict[str, Any]:
    return ls.status(_param(params, "uri"), bool(_param(params, "withPrompt")), bool(_param(params, "withVersions")))


@server.feature(PIN_VERSION_REQUEST)
async def pin_version(ls: ElixirLanguageServer, params: Any) -> dict[str, Any]:
    return await ls.pin_version(_param(params, "version"))


@server.command(PIN_VERSION_COMMAND)
async def pin_version_command(ls: ElixirLanguageServer, *arguments: Any) -> dict[str, Any]:
    return await ls.pin_version(pin_argument(arguments))


@server.feature(types.SHUTDOWN)
def shutdown(ls: ElixirLanguageServer, params: Any) -> None:
    ls.models.close()
    ls.engine.close()
    ls.idioms.close()
