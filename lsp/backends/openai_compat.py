"""A backend speaking the OpenAI-compatible completions API (llama-server, vLLM, Ollama) over HTTP.

`POST {base_url}/v1/completions` with `stream: true`; the reply is Server-Sent Events, one JSON chunk per
`data:` line, ending with `data: [DONE]`. Every target server puts a complete JSON payload on each `data:`
line, so lines are parsed one by one rather than joined into multi-line events.

Stopping early (cancel, `should_stop`, time budget) closes the response before it is fully read, which
closes the connection: llama-server notices the disconnect and stops generating for us.

Cancellation is checked between streamed chunks; while the server is still evaluating the prompt (no chunk
yet) the wait is bounded by the read timeout, since a blocked socket read cannot be interrupted portably.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

from lsp.backends.base import (
    BackendError,
    BackendInfo,
    GenerationParams,
    GenerationResult,
    StopCheck,
    generation_starts,
)
from lsp.prompt import FimTokens, Prompt

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Fields outside the OpenAI completions schema. llama-server and Ollama ignore what they don't know, but
# strict servers (some vLLM versions, proxies) reject them with 400; then we drop them for good.
_OPTIONAL_FIELDS = ("cache_prompt", "stream_options")
# Phrases with which servers report a field they don't accept (vLLM/pydantic, Go and Rust JSON decoders).
_UNKNOWN_FIELD_HINTS = (
    "extra_forbidden",
    "extra inputs are not permitted",
    "unknown field",
    "unrecognized field",
    "unrecognized argument",
)
# Error bodies are read only this far, so a misbehaving server cannot make us buffer without bound.
_MAX_ERROR_BODY = 64 * 1024
# Rough characters per token for code; see count_tokens.
_CHARS_PER_TOKEN = 3.5


class _HttpStatusError(Exception):
    """An HTTP error reply, kept apart from BackendError so callers can decide on a retry first."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class OpenAICompatBackend:
    def __init__(
        self,
        base_url: str,
        model: str = "",
        api_key: str | None = None,
        timeout_s: float = 10.0,
        fim: FimTokens | None = None,
        n_ctx: int = 4096,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        # Accept both "http://host:8080" and "http://host:8080/v1", as users paste either.
        root = self._base_url[: -len("/v1")] if self._base_url.endswith("/v1") else self._base_url
        self._url = f"{root}/v1/completions"
        self._model = model
        self._fim = fim
        self._n_ctx = n_ctx
        self._timeout_s = timeout_s
        self._send_optional_fields = True
        # vLLM and others reject max_tokens 0; after one rejection prefill asks for a single token.
        self._prefill_max_tokens = 0
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # Connect, read (per socket read, i.e. between chunks), write and pool wait are all bounded.
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s))

    @property
    def url(self) -> str:
        return self._url

    # -- Backend protocol ------------------------------------------------------------------------------

    def info(self) -> BackendInfo:
        return BackendInfo(
            backend="openai_compat", model=self._model or self._base_url, fim=self._fim, n_ctx=self._n_ctx
        )

    def count_tokens(self, text: str) -> int:
        """An ESTIMATE (about 3.5 characters per token): there is no tokenizer endpoint common to all servers.

        Callers use it for budgeting prompt windows, where a slight over-estimate is harmless.
        """
        return math.ceil(len(text) / _CHARS_PER_TOKEN)

    def generate(
        self, prompt: Prompt, params: GenerationParams, should_stop: StopCheck, cancel: threading.Event
    ) -> GenerationResult:
        if cancel.is_set():
            return GenerationResult(text="", stop_reason="cancelled")
        body = {
            "prompt": prompt.text,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "stream": True,
        }
        generation_starts(should_stop)
        try:
            return self._with_field_retry(body, lambda b: self._stream(b, params, should_stop, cancel))
        except _HttpStatusError as exc:
            raise BackendError(self._describe(exc)) from exc

    def prefill(self, prompt: Prompt, cancel: threading.Event) -> GenerationResult:
        """Warm llama-server's KV cache with the prompt (max_tokens 0, like llama.vim's `n_predict: 0`).

        Never raises: a failed warm-up only costs the next completion some latency.
        """
        if cancel.is_set():
            return GenerationResult(text="", stop_reason="prefill")
        start = time.perf_counter()
        try:
            try:
                data = self._prefill_request(prompt, self._prefill_max_tokens)
            except _HttpStatusError as exc:
                if exc.status != 400 or self._prefill_max_tokens != 0 or "max_tokens" not in exc.message:
                    raise
                log.info("%s rejects max_tokens 0 (%s); prefilling with max_tokens 1", self._url, exc.message)
                self._prefill_max_tokens = 1
                data = self._prefill_request(prompt, 1)
        except (BackendError, _HttpStatusError) as exc:
            log.warning("prefill failed: %s", self._describe(exc))
            return GenerationResult(text="", stop_reason="prefill", extra={"failed": 1.0})
        except Exception:  # prefill must never take the server down
            log.exception("prefill failed unexpectedly (%s)", self._url)
            return GenerationResult(text="", stop_reason="prefill", extra={"failed": 1.0})
        result = GenerationResult(text="", stop_reason="prefill")
        result.prompt_ms = (time.perf_counter() - start) * 1000.0
        _apply_server_stats(result, data)
        return result

    def close(self) -> None:
        self._client.close()

    # -- internals -------------------------------------------------------------------------------------

    def _body(self, base: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        # Omitted when empty: vLLM and Ollama reject an empty model name, llama-server ignores the field.
        if self._model:
            body["model"] = self._model
        body.update(base)
        if self._send_optional_fields:
            body["cache_prompt"] = True  # llama-server: reuse the KV cache for the common prompt prefix
            if body.get("stream"):
                # Standard OpenAI field; asks for token counts in a final chunk (vLLM, Ollama).
                body["stream_options"] = {"include_usage": True}
        return body

    def _with_field_retry(self, base: dict[str, Any], send: Callable[[dict[str, Any]], _T]) -> _T:
        """Send; on a 400 about an unknown field, drop the non-standard fields for good and retry once.

        A final HTTP error is raised as _HttpStatusError so that the caller can still react to it.
        """
        try:
            return send(self._body(base))
        except _HttpStatusError as exc:
            unknown_field = exc.status == 400 and _mentions_unknown_field(exc.message)
            if not (unknown_field and self._send_optional_fields):
                raise
            log.info("%s rejects non-standard fields (%s); retrying without them", self._url, exc.message)
            self._send_optional_fields = False
        return send(self._body(base))

    def _prefill_request(self, prompt: Prompt, max_tokens: int) -> dict[str, Any]:
        # Not streamed: there is no text to watch, and the one JSON reply carries the token counts.
        base = {"prompt": prompt.text, "max_tokens": max_tokens, "temperature": 0.0, "stream": False}
        return self._with_field_retry(base, self._post_json)

    def _post_json(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._transport_errors():
            response = self._client.post(self._url, json=body)
        if response.status_code >= 400:
            raise _HttpStatusError(response.status_code, _error_message(response.content[:_MAX_ERROR_BODY]))
        try:
            data = response.json()
        except ValueError as exc:
            raise BackendError(f"{self._url} returned malformed JSON: {response.text[:200]!r}") from exc
        if not isinstance(data, dict):
            raise BackendError(f"{self._url} returned unexpected JSON: {response.text[:200]!r}")
        return data

    def _stream(
        self, body: dict[str, Any], params: GenerationParams, should_stop: StopCheck, cancel: threading.Event
    ) -> GenerationResult:
        start = time.perf_counter()
        first_chunk_at: float | None = None
        text = ""
        chunks = 0
        stop_reason: str | None = None
        finish_reason: str | None = None
        stats: dict[str, Any] = {}
        done = False
        budget_s = params.time_budget_ms / 1000.0 if params.time_budget_ms > 0 else None

        with self._transport_errors(), self._client.stream("POST", self._url, json=body) as response:
            if response.status_code >= 400:
                raise _HttpStatusError(response.status_code, _error_message(_read_capped(response)))
            content_type = response.headers.get("content-type", "")
            if "event-stream" not in content_type:
                # The server ignored `stream: true` and answered with one JSON object.
                events: Iterator[dict[str, Any] | None] = iter([self._parse(response.read())])
            else:
                events = self._events(response)
            for event in events:
                if event is None:  # [DONE]
                    done = True
                    break
                for key in ("timings", "usage"):
                    # OpenAI-style servers send `"usage": null` on all but the last chunk.
                    if isinstance(event.get(key), dict):
                        stats[key] = event[key]
                choices = event.get("choices") or []
                if not choices:
                    continue  # e.g. the final usage-only chunk
                choice = choices[0] if isinstance(choices, list) else None
                if not isinstance(choice, dict) or not isinstance(choice.get("text") or "", str):
                    raise BackendError(f"{self._url} sent a malformed chunk: {event!r:.200}")
                delta: str = choice.get("text") or ""
                if first_chunk_at is None:
                    first_chunk_at = time.perf_counter()
                if delta:
                    text += delta
                    chunks += 1
                finish_reason = choice.get("finish_reason") or finish_reason
                if cancel.is_set():
                    stop_reason = "cancelled"
                elif delta and should_stop(text):
                    stop_reason = "stop"
                elif finish_reason:
                    # Keep reading: the usage/timings chunk and [DONE] may follow.
                    continue
                elif budget_s is not None and time.perf_counter() - first_chunk_at >= budget_s:
                    stop_reason = "time"
                if stop_reason:
                    # Leaving the `with` closes the half-read response and thereby the connection,
                    # which aborts the upstream generation.
                    break
            if stop_reason is None and not done and finish_reason is None:
                raise BackendError(f"stream from {self._url} ended before [DONE] (connection dropped?)")

        end = time.perf_counter()
        if stop_reason is None:
            stop_reason = "max_tokens" if finish_reason == "length" else "eos"
        first = first_chunk_at if first_chunk_at is not None else end
        result = GenerationResult(
            text=text,
            # Without server counts, one streamed chunk is one token (true for llama-server and vLLM).
            generated_tokens=chunks,
            prompt_ms=(first - start) * 1000.0,
            generation_ms=(end - first) * 1000.0,
            stop_reason=stop_reason,
            extra={"first_chunk_ms": (first - start) * 1000.0, "wall_ms": (end - start) * 1000.0},
        )
        _apply_server_stats(result, stats)
        return result

    def _events(self, response: httpx.Response) -> Iterator[dict[str, Any] | None]:
        """Yield each `data:` payload as a dict, then None for `[DONE]`; raise on errors in the stream."""
        for line in response.iter_lines():
            if not line or line.startswith(":"):
                continue  # event separator or SSE comment (keep-alive)
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "error":
                # Older llama-server reports mid-stream failures as `error: {json}`.
                raise self._stream_error(value)
            if field != "data":
                continue  # event:, id:, retry: carry nothing we need
            if value.strip() == "[DONE]":
                yield None
                return
            event = self._parse(value.encode())
            if "error" in event:
                raise self._stream_error(value)
            yield event

    def _stream_error(self, payload: str) -> BackendError:
        return BackendError(f"{self._url} reported an error mid-stream: {_error_message(payload.encode())}")

    def _parse(self, raw: bytes) -> dict[str, Any]:
        try:
            event = json.loads(raw)
        except ValueError as exc:
            raise BackendError(f"{self._url} sent malformed JSON in its stream: {raw[:200]!r}") from exc
        if not isinstance(event, dict):
            raise BackendError(f"{self._url} sent an unexpected stream chunk: {raw[:200]!r}")
        return event

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, _HttpStatusError):
            return f"{self._url} answered HTTP {exc.status}: {exc.message}"
        return str(exc)

    def _transport_errors(self) -> _TransportErrors:
        return _TransportErrors(self._url, self._timeout_s)


class _TransportErrors:
    """Turns httpx's transport exceptions into BackendErrors that name the URL and what failed."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._url = url
        self._timeout_s = timeout_s

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, httpx.HTTPError):
            return False
        if isinstance(exc, httpx.ConnectTimeout):
            message = f"timed out after {self._timeout_s:g} s connecting to {self._url}"
        elif isinstance(exc, httpx.TimeoutException):
            message = f"timed out after {self._timeout_s:g} s waiting for {self._url} ({type(exc).__name__})"
        elif isinstance(exc, httpx.ConnectError):
            message = f"cannot connect to {self._url}: {exc}"
        elif isinstance(exc, httpx.RemoteProtocolError):
            message = f"connection to {self._url} broke: {exc}"
        else:
            message = f"request to {self._url} failed: {type(exc).__name__}: {exc}"
        raise BackendError(message) from exc


def _read_capped(response: httpx.Response) -> bytes:
    data = b""
    for piece in response.iter_bytes():
        data += piece
        if len(data) >= _MAX_ERROR_BODY:
            break
    return data[:_MAX_ERROR_BODY]


def _error_message(raw: bytes) -> str:
    """The server's own error message: OpenAI/llama-server `{"error": {"message"}}`, vLLM `{"message"}`."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500] or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        if isinstance(error, str) and error:
            return error[:500]
        if data.get("detail"):  # FastAPI-style
            return str(data["detail"])[:500]
    return text[:500]


def _mentions_unknown_field(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in (*_OPTIONAL_FIELDS, *_UNKNOWN_FIELD_HINTS))


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _apply_server_stats(result: GenerationResult, data: dict[str, Any]) -> None:
    """Fill token counts and prompt time from llama-server `timings` and/or OpenAI `usage`, if present."""
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    timings = data.get("timings") if isinstance(data.get("timings"), dict) else {}
    prompt_n, cache_n = _int(timings.get("prompt_n")), _int(timings.get("cache_n"))
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
    usage_prompt = _int(usage.get("prompt_tokens"))

    if usage_prompt is not None:
        result.prompt_tokens = usage_prompt
    elif prompt_n is not None:
        result.prompt_tokens = prompt_n + (cache_n or 0)
    if cache_n is not None:
        result.reused_tokens = cache_n
    elif cached is not None:
        result.reused_tokens = cached
    if prompt_n is not None:
        result.evaluated_tokens = prompt_n
    elif usage_prompt is not None:
        result.evaluated_tokens = usage_prompt - result.reused_tokens

    generated = _int(timings.get("predicted_n"))
    if generated is None:
        generated = _int(usage.get("completion_tokens"))
    if generated is not None:
        result.generated_tokens = generated
    prompt_ms = timings.get("prompt_ms")
    if isinstance(prompt_ms, int | float):
        result.prompt_ms = float(prompt_ms)
    predicted_ms = timings.get("predicted_ms")
    if isinstance(predicted_ms, int | float):
        result.extra["server_predicted_ms"] = float(predicted_ms)
