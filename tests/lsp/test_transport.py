"""The stdio transport: which streams the event loop reads itself, and the real server over each kind."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lsp.transport import pollable

SERVER = [sys.executable, "-m", "lsp"]


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_message(stream) -> dict:
    length = None
    while (line := stream.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    assert length is not None, "the server closed stdout without answering"
    return json.loads(stream.read(length))


def read_response(stream, request_id: int) -> dict:
    """The response to `request_id`, skipping the notifications and requests the server sends."""
    while True:
        message = read_message(stream)
        if message.get("id") == request_id and "method" not in message:
            return message


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"processId": None, "rootUri": None, "capabilities": {}},
}
SHUTDOWN = {"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None}
EXIT = {"jsonrpc": "2.0", "method": "exit", "params": None}


@contextmanager
def running_server() -> Iterator[subprocess.Popen]:
    """The real server on pipes, as an editor starts it; killed afterwards whatever happened."""
    server = subprocess.Popen(
        SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        yield server
    finally:
        server.kill()


def test_pipes_and_sockets_are_pollable_files_and_terminals_are_not(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    left, right = socket.socketpair()
    master, terminal = os.openpty()
    regular = tmp_path / "messages"
    regular.write_bytes(b"")
    try:
        with (
            os.fdopen(os.dup(read_end), "rb") as pipe,
            left.makefile("rb") as sock,
            os.fdopen(os.dup(terminal), "rb") as tty,
            regular.open("rb") as file,
        ):
            assert pollable(pipe)
            assert pollable(sock)
            # A terminal would be switched to non-blocking mode under the user's shell.
            assert not pollable(tty)
            # epoll cannot watch a regular file.
            assert not pollable(file)
    finally:
        for fd in (read_end, write_end, master, terminal):
            os.close(fd)
        left.close()
        right.close()


def test_server_reads_messages_split_and_batched_on_a_pipe() -> None:
    """Editors write a message in several pieces, or several messages at once: both reach the handlers."""
    with running_server() as server:
        initialize = frame(INITIALIZE)
        for piece in (initialize[:7], initialize[7:25], initialize[25:60], initialize[60:]):
            server.stdin.write(piece)
            server.stdin.flush()
            time.sleep(0.05)
        response = read_response(server.stdout, 1)
        assert response["result"]["serverInfo"]["name"] == "devstral-elixir-lsp"
        assert response["result"]["capabilities"]["inlineCompletionProvider"] is not None

        server.stdin.write(frame(SHUTDOWN) + frame(EXIT))
        server.stdin.flush()
        assert read_response(server.stdout, 2)["result"] is None
        assert server.wait(timeout=30) == 0


def test_server_serves_a_regular_file_on_stdin(tmp_path: Path) -> None:
    """Not pollable: the server falls back to reading it on a thread and answers the same."""
    messages = tmp_path / "session.lsp"
    messages.write_bytes(frame(INITIALIZE) + frame(SHUTDOWN) + frame(EXIT))
    with messages.open("rb") as stdin:
        done = subprocess.run(SERVER, stdin=stdin, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    stdout = io.BytesIO(done.stdout)
    assert read_response(stdout, 1)["result"]["serverInfo"]["name"] == "devstral-elixir-lsp"
    assert read_response(stdout, 2)["result"] is None


def test_server_exits_when_the_client_closes_its_pipe() -> None:
    with running_server() as server:
        server.stdin.write(frame(INITIALIZE))
        server.stdin.flush()
        read_response(server.stdout, 1)
        server.stdin.close()
        assert server.wait(timeout=30) == 0


STATS = """defmodule Shop.Stats do
  def active_count(users) do
    users |> Enum.filter(& &1.active) |> Enum.count()
  end
end
"""
STATS_URI = "file:///tmp/stats.ex"


def code_action(request_id: int) -> dict:
    line = {"start": {"line": 2, "character": 4}, "end": {"line": 2, "character": 52}}
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "textDocument/codeAction",
        "params": {
            "textDocument": {"uri": STATS_URI},
            "range": line,
            "context": {"diagnostics": []},
        },
    }


def configuration(disabled: list[str]) -> dict:
    settings = {"idioms": {"disabledRules": disabled}}
    return {"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": settings}}


def offers_rule(response: dict) -> bool:
    """Whether the rule's action is offered (editors hide actions marked `disabled`)."""
    return any(
        action["title"].startswith("Make idiomatic: Enum.filter |> Enum.count") and "disabled" not in action
        for action in response["result"]
    )


def wait_until_offered(server: subprocess.Popen, request_id: int) -> int:
    """Ask until the rule is offered (its query compiles in the background after settings arrive);
    returns the next free request id."""
    for _ in range(200):
        server.stdin.write(frame(code_action(request_id)))
        server.stdin.flush()
        request_id += 1
        if offers_rule(read_response(server.stdout, request_id - 1)):
            return request_id
        time.sleep(0.05)
    raise AssertionError("the rule was never offered")


def test_a_notification_batched_with_a_request_is_applied_before_the_request() -> None:
    """Editors write a settings change and the next request back to back; the request must see the
    settings (LSP processes messages in order), although the settings handler is a coroutine."""
    with running_server() as server:
        opened = {"textDocument": {"uri": STATS_URI, "languageId": "elixir", "version": 1, "text": STATS}}
        server.stdin.write(
            frame(INITIALIZE) + frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": opened})
        )
        server.stdin.flush()
        read_response(server.stdout, 1)
        request_id = wait_until_offered(server, 10)

        # Disabling takes effect at once: the request right behind the notification must not offer it.
        server.stdin.write(frame(configuration(["enum_filter_count"])) + frame(code_action(request_id)))
        server.stdin.flush()
        assert not offers_rule(read_response(server.stdout, request_id))
        # Enabling compiles the rule again in the background: it comes back.
        server.stdin.write(frame(configuration([])))
        wait_until_offered(server, request_id + 1)
