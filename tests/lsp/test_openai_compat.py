"""OpenAICompatBackend against a real loopback HTTP server that speaks the SSE wire format of llama-server."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lsp.backends.base import BackendError, GenerationParams, LateStopCheck
from lsp.backends.openai_compat import OpenAICompatBackend
from lsp.prompt import FimTokens, Prompt, Segment
from tests.lsp.late_check import build_when_started

FIM = FimTokens(prefix="<|fim_prefix|>", suffix="<|fim_suffix|>", middle="<|fim_middle|>")
PROMPT = Prompt(
    (
        Segment("# File: lib/a.ex\n"),
        Segment(FIM.suffix, special=True),
        Segment("\nend\n"),
        Segment(FIM.prefix, special=True),
        Segment("defmodule A do\n  def f(x), do: "),
        Segment(FIM.middle, special=True),
    )
)
TIMINGS = {"prompt_n": 7, "cache_n": 30, "predicted_n": 3, "prompt_ms": 12.5, "predicted_ms": 4.0}


def never(_text: str) -> bool:
    return False


# -- the fake server -----------------------------------------------------------------------------------


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


Responder = Callable[["Handler", dict[str, Any]], None]


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[Recorded] = []
        self.responders: list[Responder] = []  # one per request; the last one repeats
        self.chunks_sent = 0
        self.disconnected = threading.Event()
        self.finished = threading.Event()  # the handler wrote its whole response
        # Set at teardown, so stalled handlers end quickly.
        self.stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def respond(self, *responders: Responder) -> None:
        self.responders = list(responders)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up on an idle keep-alive connection is normal; anything else is a test bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked streaming and keep-alive, as llama-server does
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        server = self.server
        index = len(server.requests)
        server.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        responder = server.responders[min(index, len(server.responders) - 1)]
        try:
            responder(self, body)
            server.finished.set()
        except (BrokenPipeError, ConnectionResetError):
            server.disconnected.set()
            self.close_connection = True

    # helpers for responders

    def send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_event(self, payload: Any) -> None:
        self.write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")
        self.server.chunks_sent += 1

    def end_sse(self, done: bool = True) -> None:
        if done:
            self.write_chunk(b"data: [DONE]\n\n")
        self.write_chunk(b"")  # end of chunked body


def chunk(text: str, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "model": "m",
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


def sse(
    pieces: list[str],
    finish: str = "stop",
    delay: float = 0.0,
    final_extra: dict[str, Any] | None = None,
    before: Callable[[int], None] | None = None,
) -> Responder:
    """Stream `pieces` one per chunk, then a final chunk with finish_reason (and timings), then [DONE]."""

    def respond(handler: Handler, _body: dict[str, Any]) -> None:
        handler.start_sse()
        for i, piece in enumerate(pieces):
            if before is not None:
                before(i)
            handler.send_event(chunk(piece))
            if delay:
                time.sleep(delay)
        handler.send_event(chunk("", finish, **(final_extra or {})))
        handler.end_sse()

    return respond


def error(status: int, payload: Any) -> Responder:
    def respond(handler: Handler, _body: dict[str, Any]) -> None:
        handler.send_json(status, payload)

    return respond


@contextmanager
def running() -> Iterator[FakeServer]:
    """A FakeServer serving on a loopback port in a thread, shut down on exit."""
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=2)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with running() as srv:
        yield srv


@pytest.fixture
def make_backend() -> Iterator[Callable[..., OpenAICompatBackend]]:
    made: list[OpenAICompatBackend] = []

    def make(url: str, **kwargs: Any) -> OpenAICompatBackend:
        kwargs.setdefault("timeout_s", 2.0)
        backend = OpenAICompatBackend(url, **kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


# -- streaming -----------------------------------------------------------------------------------------


def test_streams_text_and_sends_the_expected_request(server: FakeServer, make_backend: Any) -> None:
    server.respond(sse(["x ", "+", " 1"], final_extra={"timings": TIMINGS}))
    backend = make_backend(server.url, model="devstral-elixir", api_key="sekrit", fim=FIM)

    result = backend.generate(
        PROMPT, GenerationParams(max_tokens=32, temperature=0.2), never, threading.Event()
    )

    assert result.text == "x + 1"
    assert result.stop_reason == "eos"
    (req,) = server.requests
    assert req.path == "/v1/completions"
    assert req.headers["authorization"] == "Bearer sekrit"
    assert req.body["prompt"] == PROMPT.text
    assert "<|fim_suffix|>\nend\n<|fim_prefix|>defmodule A do" in req.body["prompt"]
    assert req.body["prompt"].endswith("<|fim_middle|>")
    assert req.body["model"] == "devstral-elixir"
    assert req.body["max_tokens"] == 32
    assert req.body["temperature"] == 0.2
    assert req.body["stream"] is True
    assert req.body["cache_prompt"] is True


def test_llama_server_timings_fill_the_result(server: FakeServer, make_backend: Any) -> None:
    server.respond(sse(["a", "b", "c"], final_extra={"timings": TIMINGS}))
    result = make_backend(server.url).generate(PROMPT, GenerationParams(), never, threading.Event())

    assert result.prompt_tokens == 37
    assert result.reused_tokens == 30
    assert result.evaluated_tokens == 7
    assert result.generated_tokens == 3
    assert result.prompt_ms == 12.5
    assert result.generation_ms >= 0.0


def test_openai_usage_chunk_fills_the_result(server: FakeServer, make_backend: Any) -> None:
    usage = {"prompt_tokens": 40, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 32}}

    def respond(handler: Handler, _body: dict[str, Any]) -> None:
        handler.start_sse()
        handler.send_event(chunk("ok", usage=None))
        handler.send_event(chunk("!", "stop", usage=None))
        # vLLM/OpenAI with stream_options.include_usage: a last chunk with no choices.
        handler.send_event({"id": "cmpl-1", "choices": [], "usage": usage})
        handler.end_sse()

    server.respond(respond)
    result = make_backend(server.url).generate(PROMPT, GenerationParams(), never, threading.Event())

    assert result.text == "ok!"
    assert (result.prompt_tokens, result.reused_tokens, result.evaluated_tokens) == (40, 32, 8)
    assert result.generated_tokens == 2
    assert result.prompt_ms > 0.0  # measured: time to first chunk
    assert server.requests[0].body["stream_options"] == {"include_usage": True}


def test_no_auth_header_without_api_key_and_base_url_with_v1(server: FakeServer, make_backend: Any) -> None:
    server.respond(sse(["a"]))
    backend = make_backend(server.url + "/v1/")
    backend.generate(PROMPT, GenerationParams(), never, threading.Event())

    (req,) = server.requests
    assert req.path == "/v1/completions"
    assert "authorization" not in req.headers
    assert "model" not in req.body  # empty model: let the server pick its own


def test_finish_reason_length_is_max_tokens(server: FakeServer, make_backend: Any) -> None:
    server.respond(sse(["a", "b"], finish="length"))
    result = make_backend(server.url).generate(
        PROMPT, GenerationParams(max_tokens=2), never, threading.Event()
    )
    assert result.text == "ab"
    assert result.stop_reason == "max_tokens"


def test_utf8_split_across_network_chunks(server: FakeServer, make_backend: Any) -> None:
    def respond(handler: Handler, _body: dict[str, Any]) -> None:
        handler.start_sse()
        data = b"data: " + json.dumps(chunk("é → ü"), ensure_ascii=False).encode() + b"\n\n"
        cut = data.index("→".encode()) + 1  # in the middle of a multi-byte character
        handler.write_chunk(data[:cut])
        time.sleep(0.02)
        handler.write_chunk(data[cut:])
        handler.send_event(chunk("", "stop"))
        handler.end_sse()

    server.respond(respond)
    result = make_backend(server.url).generate(PROMPT, GenerationParams(), never, threading.Event())
    assert result.text == "é → ü"


# -- stopping early ------------------------------------------------------------------------------------


def test_should_stop_stops_early_and_the_server_sees_the_disconnect(
    server: FakeServer, make_backend: Any
) -> None:
    pieces = [f"t{i} " for i in range(60)]
    server.respond(sse(pieces, delay=0.01))
    seen: list[str] = []

    def stop_after_three(text: str) -> bool:
        seen.append(text)
        return len(seen) == 3

    result = make_backend(server.url).generate(
        PROMPT, GenerationParams(), stop_after_three, threading.Event()
    )

    assert result.stop_reason == "stop"
    assert result.text == "t0 t1 t2 "
    assert server.disconnected.wait(3), "server never noticed the client hanging up"
    assert not server.finished.is_set()
    assert server.chunks_sent < len(pieces)


def test_a_stop_check_built_once_the_request_is_sent_is_honoured(
    server: FakeServer, make_backend: Any
) -> None:
    server.respond(sse([f"t{i} " for i in range(20)]))
    stop = LateStopCheck()
    seen = build_when_started(stop, lambda: lambda text: text.count(" ") == 2)

    result = make_backend(server.url).generate(PROMPT, GenerationParams(), stop, threading.Event())

    assert seen["started"], "the backend never called generation_starts"
    assert result.stop_reason == "stop"
    assert result.text == "t0 t1 "


def test_cancel_from_another_thread_stops_within_one_chunk(server: FakeServer, make_backend: Any) -> None:
    cancel = threading.Event()
    three_seen = threading.Event()
    cancel_was_set = threading.Event()

    def gate(i: int) -> None:
        # Hold chunk 3 back until the other thread has cancelled, so the test is deterministic.
        if i == 3:
            assert cancel_was_set.wait(3)
        elif i > 3:
            time.sleep(0.01)  # slow enough that the client hangs up before the stream ends

    server.respond(sse([f"t{i} " for i in range(60)], before=gate))

    def watch(text: str) -> bool:
        if text.count(" ") == 3:
            three_seen.set()
        return False

    def canceller() -> None:
        three_seen.wait(3)
        cancel.set()
        cancel_was_set.set()

    thread = threading.Thread(target=canceller)
    thread.start()
    result = make_backend(server.url).generate(PROMPT, GenerationParams(), watch, cancel)
    thread.join(3)

    assert result.stop_reason == "cancelled"
    assert result.text == "t0 t1 t2 t3 "  # exactly one chunk after the cancel
    assert server.disconnected.wait(3)


def test_already_cancelled_sends_nothing(server: FakeServer, make_backend: Any) -> None:
    cancel = threading.Event()
    cancel.set()
    result = make_backend(server.url).generate(PROMPT, GenerationParams(), never, cancel)
    assert result.stop_reason == "cancelled"
    assert server.requests == []


def test_time_budget(server: FakeServer, make_backend: Any) -> None:
    server.respond(sse([f"t{i} " for i in range(100)], delay=0.02))
    start = time.perf_counter()
    result = make_backend(server.url).generate(
        PROMPT, GenerationParams(time_budget_ms=100), never, threading.Event()
    )
    elapsed = time.perf_counter() - start

    assert result.stop_reason == "time"
    assert 0 < result.text.count(" ") < 100
    assert elapsed < 1.0
    assert server.disconnected.wait(3)


def test_connection_is_reused_after_a_complete_stream(server: FakeServer, make_backend: Any) -> None:
    server.respond(sse(["a"]))
    backend = make_backend(server.url)
    for _ in range(3):
        assert backend.generate(PROMPT, GenerationParams(), never, threading.Event()).text == "a"
    assert len(server.requests) == 3


# -- errors --------------------------------------------------------------------------------------------


def test_http_500_names_status_and_server_message(server: FakeServer, make_backend: Any) -> None:
    server.respond(
        error(500, {"error": {"code": 500, "message": "failed to load model", "type": "server_error"}})
    )
    backend = make_backend(server.url)
    with pytest.raises(BackendError) as info:
        backend.generate(PROMPT, GenerationParams(), never, threading.Event())
    message = str(info.value)
    assert "500" in message
    assert "failed to load model" in message
    assert backend.url in message
    assert len(server.requests) == 1  # no retry for server errors


def test_unrelated_400_is_not_retried(server: FakeServer, make_backend: Any) -> None:
    server.respond(error(400, {"error": {"code": 400, "message": "the request exceeds the context size"}}))
    with pytest.raises(BackendError, match=r"400.*exceeds the context size"):
        make_backend(server.url).generate(PROMPT, GenerationParams(), never, threading.Event())
    assert len(server.requests) == 1


def test_400_unknown_field_retries_once_without_extras_and_remembers(
    server: FakeServer, make_backend: Any
) -> None:
    def strict(handler: Handler, body: dict[str, Any]) -> None:
        extras = [name for name in ("cache_prompt", "stream_options") if name in body]
        if extras:
            # vLLM's pydantic validation error, as it answers for unknown fields.
            detail = [
                {"type": "extra_forbidden", "loc": ("body", name), "msg": "Extra inputs are not permitted"}
                for name in extras
            ]
            handler.send_json(
                400, {"object": "error", "message": str(detail), "type": "BadRequestError", "code": 400}
            )
        else:
            sse(["ok"])(handler, body)

    server.respond(strict)
    backend = make_backend(server.url)

    first = backend.generate(PROMPT, GenerationParams(), never, threading.Event())
    second = backend.generate(PROMPT, GenerationParams(), never, threading.Event())

    assert first.text == second.text == "ok"
    bodies = [req.body for req in server.requests]
    assert len(bodies) == 3  # rejected, retried, then straight through
    assert "cache_prompt" in bodies[0]
    assert "cache_prompt" not in bodies[1] and "stream_options" not in bodies[1]
    assert "cache_prompt" not in bodies[2]
    assert bodies[1]["prompt"] == PROMPT.text and bodies[1]["stream"] is True


def test_400_unknown_field_retry_happens_only_once(server: FakeServer, make_backend: Any) -> None:
    server.respond(error(400, {"error": {"message": "unknown field `cache_prompt`"}}))
    with pytest.raises(BackendError, match="400"):
        make_backend(server.url).generate(PROMPT, GenerationParams(), never, threading.Event())
    assert len(server.requests) == 2


@pytest.fixture
def refused_url() -> Iterator[str]:
    # A bound socket that does not listen refuses connections, with no race against other processes.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_connection_refused_names_the_url(refused_url: str, make_backend: Any) -> None:
    backend = make_backend(refused_url)
    with pytest.raises(BackendError) as info:
        backend.generate(PROMPT, GenerationParams(), never, threading.Event())
    assert "cannot connect" in str(info.value)
    assert f"{refused_url}/v1/completions" in str(info.value)


def test_read_timeout_before_headers(server: FakeServer, make_backend: Any) -> None:
    def stall(handler: Handler, _body: dict[str, Any]) -> None:
        handler.server.stop.wait(5)

    server.respond(stall)
    start = time.perf_counter()
    with pytest.raises(BackendError, match="timed out"):
        make_backend(server.url, timeout_s=0.3).generate(PROMPT, GenerationParams(), never, threading.Event())
    assert time.perf_counter() - start < 2.0


def test_read_timeout_mid_stream(server: FakeServer, make_backend: Any) -> None:
    def stall(handler: Handler, _body: dict[str, Any]) -> None:
        handler.start_sse()
        handler.send_event(chunk("a"))
        handler.server.stop.wait(5)

    server.respond(stall)
    with pytest.raises(BackendError, match="timed out"):
        make_backend(server.url, timeout_s=0.3).generate(PROMPT, GenerationParams(), never, threading.Event())


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        (b"data: {not json", "malformed JSON"),
        (b'data: ["a list"]', "unexpected stream chunk"),
        (b'data: {"choices": {"text": "x"}}', "malformed chunk"),
        (b'data: {"choices": [{"text": 42}]}', "malformed chunk"),
    ],
    ids=["not-json", "not-object", "choices-not-list", "text-not-string"],
)
def test_malformed_stream(server: FakeServer, make_backend: Any, line: bytes, complaint: str) -> None:
    def respond(handler: Handler, _body: dict[str, Any]) -> None:
        handler.start_sse()
        handler.send_event(chunk("a"))
        handler.write_chunk(line + b"\n\n")
        handler.end_sse()

    server.respond(respond)
    with pytest.raises(BackendError, match=complaint):
        make_backend(server.url).generate(PROMPT, GenerationParams(), never, threading.Event())


def test_error_event_mid_stream(server: FakeServer, make_backend: Any) -> None:
    def respond(handler: Handler, _body: dict[str, Any]) -> None:
        handler.start_sse()
        handler.send_event(chunk("a"))
        handler.send_event({"error": {"code": 500, "message": "slot crashed", "type": "server_error"}})
        handler.end_sse()

    server.respond(respond)
    with pytest.raises(BackendError, match="slot crashed"):
        make_backend(server.url).generate(PROMPT, GenerationParams(), never, threading.Event())


def test_stream_that_ends_without_done_or_finish_reason(server: FakeServer, make_backend: Any) -> None:
    def respond(handler: Handler, _body: dict[str, Any]) -> None:
        handler.start_sse()
        handler.send_event(chunk("a"))
        handler.end_sse(done=False)

    server.respond(respond)
    with pytest.raises(BackendError, match="ended before"):
        make_backend(server.url).generate(PROMPT, GenerationParams(), never, threading.Event())


def test_server_that_ignores_stream_true(server: FakeServer, make_backend: Any) -> None:
    server.respond(
        error(200, {**chunk("whole", "length"), "usage": {"prompt_tokens": 9, "completion_tokens": 1}})
    )
    result = make_backend(server.url).generate(PROMPT, GenerationParams(), never, threading.Event())
    assert (result.text, result.stop_reason, result.prompt_tokens) == ("whole", "max_tokens", 9)


# -- prefill -------------------------------------------------------------------------------------------


def test_prefill_sends_max_tokens_zero(server: FakeServer, make_backend: Any) -> None:
    server.respond(error(200, {**chunk("", "length"), "timings": {**TIMINGS, "predicted_n": 0}}))
    result = make_backend(server.url).prefill(PROMPT, threading.Event())

    (req,) = server.requests
    assert req.body["max_tokens"] == 0
    assert req.body["prompt"] == PROMPT.text
    assert req.body["cache_prompt"] is True
    assert req.body["stream"] is False
    assert result.stop_reason == "prefill"
    assert result.text == ""
    assert (result.prompt_tokens, result.reused_tokens, result.evaluated_tokens) == (37, 30, 7)


def test_prefill_falls_back_to_one_token_and_remembers(server: FakeServer, make_backend: Any) -> None:
    def picky(handler: Handler, body: dict[str, Any]) -> None:
        if body["max_tokens"] < 1:
            message = "max_tokens must be at least 1, got 0."
            handler.send_json(400, {"object": "error", "message": message, "type": "BadRequestError"})
        else:
            handler.send_json(200, chunk("x", "length"))

    server.respond(picky)
    backend = make_backend(server.url)
    first = backend.prefill(PROMPT, threading.Event())
    second = backend.prefill(PROMPT, threading.Event())

    assert [req.body["max_tokens"] for req in server.requests] == [0, 1, 1]
    assert first.stop_reason == second.stop_reason == "prefill"
    assert first.text == ""  # the one generated token is ignored
    assert "cache_prompt" in server.requests[2].body  # that 400 was not about unknown fields


@pytest.mark.parametrize(
    "responder",
    [
        error(500, {"error": {"message": "boom"}}),
        error(200, ["not", "an", "object"]),
        error(400, {"error": {"message": "bad"}}),
    ],
    ids=["500", "bad-json", "400"],
)
def test_prefill_never_raises(
    server: FakeServer, make_backend: Any, responder: Responder, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond(responder)
    with caplog.at_level(logging.WARNING, logger="lsp.backends.openai_compat"):
        result = make_backend(server.url).prefill(PROMPT, threading.Event())
    assert result.stop_reason == "prefill"
    assert "prefill failed" in caplog.text


def test_prefill_swallows_connection_refused(refused_url: str, make_backend: Any) -> None:
    result = make_backend(refused_url).prefill(PROMPT, threading.Event())
    assert result.stop_reason == "prefill"


def test_prefill_swallows_timeout(server: FakeServer, make_backend: Any) -> None:
    def stall(handler: Handler, _body: dict[str, Any]) -> None:
        handler.server.stop.wait(5)

    server.respond(stall)
    result = make_backend(server.url, timeout_s=0.3).prefill(PROMPT, threading.Event())
    assert result.stop_reason == "prefill"


# -- info / count_tokens -------------------------------------------------------------------------------


def test_info_and_token_estimate(make_backend: Any) -> None:
    backend = make_backend("http://127.0.0.1:9", fim=FIM, n_ctx=8192)
    info = backend.info()
    assert (info.backend, info.model, info.fim, info.n_ctx) == (
        "openai_compat",
        "http://127.0.0.1:9",
        FIM,
        8192,
    )
    assert make_backend("http://x", model="qwen").info().model == "qwen"
    assert backend.count_tokens("") == 0
    assert backend.count_tokens("abcdefg") == 2
    assert backend.count_tokens("abcdefgh") == 3
