"""Completion scheduling: debounce, single flight, cancellation, caches, prefill and speculation.

All model work runs on one worker thread (llama.cpp contexts are not thread-safe and there is one model);
the asyncio side decides what runs. A newer request supersedes older ones: their cancel events are set and
the backend stops between tokens (or prompt chunks). Prefill and speculative work yield to any request.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsp.backends.base import Backend, GenerationParams, GenerationResult, LateStopCheck
from lsp.completion.assemble import (
    LineTokenCounter,
    SnippetCache,
    Windows,
    build_prompt_input,
    parse_guard,
    postprocess_edges,
)
from lsp.completion.cache import AFTER_KEY_CHARS, BEFORE_KEY_CHARS, TypedAheadCache
from lsp.completion.postprocess import is_mid_line, make_stop_check, postprocess
from lsp.config import Settings
from lsp.documents import Document, Position
from lsp.prompt import Prompt, render_completion_prompt
from lsp.syntax.snippets import Chunk, chunk_document

LATENCY_WINDOW = 500
# How long background analysis waits for completions to finish before going on regardless.
BACKGROUND_WAIT_LIMIT_S = 5.0
# How long a request waits for the worker to reach the model before building its stop check regardless.
WORKER_START_WAIT_S = 0.002


@dataclass
class Completion:
    text: str
    source: str  # model | cache
    latency_ms: float
    result: GenerationResult | None = None
    reason: str = "ok"


@dataclass
class ModelCall:
    """The last model call, for `devstralElixir/status`: what it was asked, what it did, and where the rest
    of its request's time went: prompt building and post-processing run around the model; what a
    request's time leaves besides them and the model's is mostly the hand-offs to and from its worker."""

    prompt: Prompt
    result: GenerationResult
    prompt_build_ms: float | None = None
    postprocess_ms: float | None = None
    # From the request reaching the engine to its answer (None: not a completion request, or not finished).
    request_ms: float | None = None


@dataclass
class Stats:
    requests: int = 0
    served: int = 0
    from_cache: int = 0
    empty: int = 0
    cancelled: int = 0
    superseded: int = 0
    errors: int = 0
    prefills: int = 0
    # Requests whose prompt was evaluated while their debounce ran (see `_evaluate_while_debouncing`).
    debounce_prefills: int = 0
    speculative: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    evaluated_tokens: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def percentiles(self) -> dict[str, float | None]:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return {"p50": None, "p95": None, "max": None}

        def pick(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

        return {"p50": pick(0.5), "p95": pick(0.95), "max": round(ordered[-1], 1)}

    def as_dict(self) -> dict[str, object]:
        """camelCase, as LSP payloads are."""
        counts = {_camel(k): v for k, v in self.__dict__.items() if k != "latencies_ms"}
        return {**counts, "latencyMs": self.percentiles()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def uri_to_path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def relative_path(uri: str, root: Path | None) -> str:
    path = Path(uri_to_path(uri))
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return path.name


class _Ticket:
    """One piece of model work; `cancel` is what the worker thread watches."""

    def __init__(self, kind: str, activity: int = 0):
        self.kind = kind
        self.activity = activity
        self.cancel = threading.Event()


class CompletionEngine:
    def __init__(self, settings: Settings, log: Callable[[str, str], None] | None = None):
        self.settings = settings
        self.backend: Backend | None = None
        # Bumped by every set_backend: a result that comes back under another epoch is the old model's.
        self.backend_epoch = 0
        self.documents: dict[str, Document] = {}
        self.root: Path | None = None
        self.stats = Stats()
        self.cache = TypedAheadCache()
        self._log = log or (lambda level, message: None)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        # The newest request per (document, channel); inline and popup completions are separate channels,
        # since editors send both for one keystroke and neither should cancel the other.
        self._latest: dict[tuple[str, str], _Ticket] = {}
        # Set while no request is registered in `_latest`: background analysis waits on it.
        self._no_requests = threading.Event()
        self._no_requests.set()
        self._background: set[_Ticket] = set()
        # One cursor, one idle timer; `_activity` counts requests and edits so that background work
        # queued behind a request can tell it is stale before it touches the KV cache.
        self._idle_timer: asyncio.TimerHandle | None = None
        self._activity = 0
        self._chunks: dict[str, tuple[int, tuple[Chunk, ...]]] = {}
        self._budget_counter = LineTokenCounter(self.count_tokens)
        self._snippet_caches: dict[str, SnippetCache] = {}
        self.last_prefill: GenerationResult | None = None
        # The last model call's prompt and outcome, for `devstralElixir/status` (benchmarks, debugging).
        self.last_model_call: ModelCall | None = None

    # -- model ------------------------------------------------------------------------------------------
    async def run_in_worker(self, fn: Callable, *args: object) -> object:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def set_backend(self, backend: Backend | None) -> None:
        """Serve new requests from `backend`; work already handed to the old one finishes on it.

        Every call site reads `self.backend` when it submits work to the single worker, so whatever was
        submitted before this call runs on the old backend, and its close, queued behind that work, runs
        after it. Prefill and speculation for the old model are pointless now: cancel them.
        """
        old, self.backend = self.backend, backend
        self.backend_epoch += 1
        self._cancel_background()
        self.cache.clear()
        # Token counts, and the snippets chosen by them, belong to the backend's tokenizer.
        self._budget_counter = LineTokenCounter(self.count_tokens)
        self._snippet_caches.clear()
        if old is not None and old is not backend:
            self._executor.submit(old.close)

    def count_tokens(self, text: str) -> int:
        assert self.backend is not None
        return self.backend.count_tokens(text)

    # -- prompts ----------------------------------------------------------------------------------------
    def _other_chunks(self, uri: str) -> tuple[tuple[Chunk, ...], tuple]:
        chunks: list[Chunk] = []
        key = []
        for other_uri, doc in sorted(self.documents.items()):
            if other_uri == uri:
                continue
            cached = self._chunks.get(other_uri)
            if cached is None or cached[0] != doc.version:
                cached = (
                    doc.version,
                    chunk_document(relative_path(other_uri, self.root), doc.tree, doc.source),
                )
                self._chunks[other_uri] = cached
            chunks.extend(cached[1])
            key.append((other_uri, doc.version))
        return tuple(chunks), tuple(key)

    def build_prompt(self, doc: Document, cursor_byte: int) -> tuple[Prompt, Windows]:
        assert self.backend is not None
        chunks, chunk_key = self._other_chunks(doc.uri)
        prompt_input, windows = build_prompt_input(
            doc,
            relative_path(doc.uri, self.root),
            cursor_byte,
            self.settings.context,
            self._budget_counter,
            chunks,
            chunk_key,
            self._snippet_caches.setdefault(doc.uri, SnippetCache()),
        )
        return render_completion_prompt(prompt_input, self.backend.info().fim), windows

    @staticmethod
    def _cache_key(doc: Document, cursor_byte: int) -> tuple[str, str]:
        before = doc.source[max(0, cursor_byte - 4 * (BEFORE_KEY_CHARS + 256)) : cursor_byte]
        after = doc.source[cursor_byte : cursor_byte + 4 * AFTER_KEY_CHARS]
        return before.decode("utf-8", errors="ignore"), after.decode("utf-8", errors="ignore")

    # -- background work --------------------------------------------------------------------------------
    def _cancel_background(self) -> None:
        self._activity += 1
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        for ticket in self._background:
            ticket.cancel.set()
        self._background.clear()

    def _new_background_ticket(self, kind: str) -> _Ticket:
        ticket = _Ticket(kind, self._activity)
        self._background.add(ticket)
        return ticket

    def _background_call(self, ticket: _Ticket, fn: Callable, *args: object) -> object:
        """Run `fn` on the worker unless a request or edit came while it waited in the queue."""
        if ticket.activity != self._activity:
            ticket.cancel.set()
        return fn(*args)

    def note_cursor(self, uri: str, position: Position) -> None:
        """The cursor rests here (an edit, a code-action request): prefill once the user pauses."""
        settings = self.settings.completion
        if not (settings.enabled and settings.prefill) or self.backend is None:
            return
        self._cancel_background()
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(
            settings.prefill_idle_ms / 1000, lambda: loop.create_task(self.prefill(uri, position))
        )

    async def prefill(self, uri: str, position: Position) -> GenerationResult | None:
        doc = self.documents.get(uri)
        if doc is None or self.backend is None:
            return None
        ticket = self._new_background_ticket("prefill")
        try:
            prompt, _ = self.build_prompt(doc, doc.byte_offset(position))
            result = await self.run_in_worker(
                self._background_call, ticket, self.backend.prefill, prompt, ticket.cancel
            )
        except Exception as exc:  # prefill is an optimisation; it must never break the server
            self._log("warning", f"prefill failed: {exc}")
            return None
        finally:
            self._background.discard(ticket)
        assert isinstance(result, GenerationResult)
        self.stats.prefills += 1
        self.last_prefill = result
        self._log(
            "debug",
            f"prefill {uri_to_path(uri)}:{position.line + 1}: {result.evaluated_tokens} evaluated, "
            f"{result.reused_tokens} reused, {result.prompt_ms:.0f} ms ({result.stop_reason})",
        )
        return result

    def _evaluate_while_debouncing(self, doc: Document, cursor_byte: int, ticket: _Ticket) -> None:
        """Evaluate the request's prompt while its debounce runs, instead of leaving the model idle and
        evaluating the same tokens after it: the request then only generates. A newer request cancels it
        through this request's ticket (within one prompt chunk); what it evaluated by then is the newer
        prompt's prefix, since typing only appends to the prompt."""
        assert self.backend is not None
        prompt, _ = self.build_prompt(doc, cursor_byte)
        early = asyncio.get_running_loop().run_in_executor(
            self._executor, self.backend.prefill, prompt, ticket.cancel
        )
        early.add_done_callback(self._debounce_prefill_done)

    def _debounce_prefill_done(self, early: asyncio.Future) -> None:
        if early.cancelled():
            return
        if (error := early.exception()) is not None:  # an optimisation: the request goes on regardless
            self._log("warning", f"evaluating the prompt during the debounce failed: {error}")
        elif (result := early.result()).stop_reason == "prefill" and not result.extra.get("failed"):
            self.stats.debounce_prefills += 1

    async def _speculate(self, doc: Document, cursor_byte: int, offered: str) -> None:
        """Compute the completion that follows `offered`, as if the user accepted it (llama.vim)."""
        assert self.backend is not None
        epoch = self.backend_epoch
        ticket = self._new_background_ticket("speculative")
        try:
            source = doc.source[:cursor_byte] + offered.encode("utf-8") + doc.source[cursor_byte:]
            accepted = Document(doc.uri, source.decode("utf-8", errors="replace"), doc.version, encoding=doc.encoding)
            new_cursor = cursor_byte + len(offered.encode("utf-8"))
            completion = await self._generate(accepted, new_cursor, ticket)
        except Exception as exc:
            self._log("warning", f"speculative completion failed: {exc}")
            return
        finally:
            self._background.discard(ticket)
        if completion is not None and completion.text and epoch == self.backend_epoch:
            self.stats.speculative += 1
            self.cache.put(*self._cache_key(accepted, new_cursor), completion.text)

    # -- requests ---------------------------------------------------------------------------------------
    async def _generate(self, doc: Document, cursor_byte: int, ticket: _Ticket) -> Completion | None:
        assert self.backend is not None
        started = time.perf_counter()
        prompt, windows = self.build_prompt(doc, cursor_byte)
        built = time.perf_counter()
        prefix, suffix = postprocess_edges(doc, cursor_byte, windows)
        settings = self.settings.completion
        params = GenerationParams(settings.max_tokens, settings.temperature, settings.time_budget_ms)
        stop = LateStopCheck()
        call = (self.backend.generate, prompt, params, stop, ticket.cancel)
        if ticket.kind != "request":
            call = (self._background_call, ticket, *call)
        generation = asyncio.get_running_loop().run_in_executor(self._executor, *call)
        # The stop check and the parse post-processing compares the completion against are built while
        # the model tokenizes and evaluates the prompt (llama.cpp releases the GIL): with a core to spare
        # they cost the request nothing. Waiting (GIL released) until the worker has started keeps them
        # from delaying its start; bounded, since the worker may still be finishing other work.
        stop.started.wait(WORKER_START_WAIT_S)
        try:
            stop.build(lambda: make_stop_check(prefix, suffix))
        except Exception:
            ticket.cancel.set()  # the worker stops at its next token instead of waiting for the check
            raise
        guard = parse_guard(doc, cursor_byte, windows, prefix, suffix)
        result = await generation
        assert isinstance(result, GenerationResult)
        call = ModelCall(prompt, result, prompt_build_ms=(built - started) * 1000)
        if ticket.kind == "request":
            self.last_model_call = call
        if result.stop_reason == "cancelled":
            return None
        postprocessing = time.perf_counter()
        processed = postprocess(result.text, prefix, suffix, guard=guard)
        done = time.perf_counter()
        call.postprocess_ms = (done - postprocessing) * 1000
        return Completion(processed.text, "model", (done - started) * 1000, result, processed.reason)

    @property
    def completing(self) -> bool:
        """Whether a completion request is being answered (background work should wait)."""
        return bool(self._latest)

    def wait_for_no_requests(self) -> None:
        """Block (a background thread) while a completion is answered: whole-file analysis holds the GIL
        and a core, and a completion must not share either. Bounded, so a stuck request cannot starve it."""
        self._no_requests.wait(BACKGROUND_WAIT_LIMIT_S)

    async def complete(
        self, uri: str, position: Position, invoked: bool, channel: str = "inline"
    ) -> Completion | None:
        """Answer one completion request; None when superseded, cancelled or impossible."""
        doc = self.documents.get(uri)
        settings = self.settings.completion
        if doc is None or self.backend is None or not settings.enabled:
            return None
        started = time.perf_counter()
        self.stats.requests += 1
        cursor_byte = doc.byte_offset(position)
        version = doc.version
        before, after = self._cache_key(doc, cursor_byte)

        # Any request outranks background work; a newer request for this document outranks older ones.
        self._cancel_background()
        key = (uri, channel)
        previous = self._latest.get(key)
        if previous is not None:
            previous.cancel.set()
        ticket = _Ticket("request")
        self._latest[key] = ticket
        self._no_requests.clear()

        # Every way out of here, the cache's answer included, unregisters the ticket (in `finally`):
        # idiom diagnostics wait while any request is registered.
        try:
            if settings.typed_ahead_cache:
                cached = self.cache.get(before, after)
                if cached is not None:
                    if is_mid_line(before, after):
                        cached = cached.split("\n", 1)[0]
                    self.stats.from_cache += 1
                    return self._finish(Completion(cached, "cache", (time.perf_counter() - started) * 1000))
            if not invoked and settings.debounce_ms:
                if settings.prefill_during_debounce:
                    self._evaluate_while_debouncing(doc, cursor_byte, ticket)
                await asyncio.sleep(settings.debounce_ms / 1000)
            # An edit during the debounce makes the position stale; the client asks again.
            if ticket.cancel.is_set() or self._latest.get(key) is not ticket or doc.version != version:
                self.stats.superseded += 1
                return None
            epoch = self.backend_epoch
            completion = await self._generate(doc, cursor_byte, ticket)
        except asyncio.CancelledError:
            ticket.cancel.set()
            self.stats.cancelled += 1
            raise
        except Exception as exc:
            self.stats.errors += 1
            self._log("error", f"completion failed: {exc}")
            return None
        finally:
            if self._latest.get(key) is ticket:
                del self._latest[key]
            if not self._latest:
                self._no_requests.set()
        if completion is None:
            self.stats.superseded += 1
            return None
        completion.latency_ms = (time.perf_counter() - started) * 1000
        if self.last_model_call is not None and self.last_model_call.result is completion.result:
            self.last_model_call.request_ms = completion.latency_ms
        # A request that was in flight across a model swap is answered, but the old model's text must
        # not be offered again from the cache, nor speculated on.
        if completion.text and epoch == self.backend_epoch:
            if settings.typed_ahead_cache:
                self.cache.put(before, after, completion.text)
            if settings.speculative:
                asyncio.get_running_loop().create_task(self._speculate(doc, cursor_byte, completion.text))
        return self._finish(completion)

    def _finish(self, completion: Completion) -> Completion:
        stats = self.stats
        stats.served += 1
        if not completion.text:
            stats.empty += 1
        stats.latencies_ms.append(completion.latency_ms)
        if completion.result is not None:
            stats.prompt_tokens += completion.result.prompt_tokens
            stats.reused_tokens += completion.result.reused_tokens
            stats.evaluated_tokens += completion.result.evaluated_tokens
        return completion

    async def generate_text(
        self, prompt: Prompt, params: GenerationParams, should_stop: Callable[[str], bool], cancel: threading.Event
    ) -> GenerationResult:
        """A one-off generation (the model rewrite) on the worker; it outranks background work."""
        assert self.backend is not None
        self._cancel_background()
        result = await self.run_in_worker(self.backend.generate, prompt, params, should_stop, cancel)
        assert isinstance(result, GenerationResult)
        self.last_model_call = ModelCall(prompt, result)
        return result

    def close(self) -> None:
        self._cancel_background()
        for ticket in self._latest.values():
            ticket.cancel.set()
        self._no_requests.set()
        if self.backend is not None:
            self._executor.submit(self.backend.close)
        self._executor.shutdown(wait=True)
