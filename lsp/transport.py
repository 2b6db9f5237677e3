"""LSP over stdio, read by the event loop itself.

pygls reads stdin on a thread pool: every header line and every body is a hand-off to a worker thread
and back (three per message), each waiting for the GIL while the model's worker thread holds it between
tokens. Reading a pipe or socket is what the event loop does natively (epoll/kqueue), so requests reach
their handlers without any thread hop. A regular file or a terminal on stdin (not pollable, or a tty we
must not switch to non-blocking mode), and Windows, keep pygls's reader.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import threading
from typing import BinaryIO

from pygls.io_ import StdoutWriter, run_async
from pygls.server import JsonRPCServer

logger = logging.getLogger(__name__)


def pollable(stream: BinaryIO) -> bool:
    """Whether the event loop can watch `stream`: a pipe or a socket, on a POSIX system."""
    if sys.platform == "win32":
        return False
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def serve_stdio(server: JsonRPCServer, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Serve `server` on `stdin`/`stdout` until the client closes its end or sends `exit`."""
    if not pollable(stdin):
        server.start_io(stdin, stdout)
        return
    # pygls's `shutdown()` (and so the `exit` notification) ends the read loop through this event.
    server._stop_event = stop = threading.Event()
    server.protocol.set_writer(StdoutWriter(stdout))
    try:
        asyncio.run(_read_messages(server, stdin, stop))
    except BrokenPipeError:
        logger.error("the client closed the connection; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()


class _InOrderReader:
    """A StreamReader that lets the event loop run once before each line it reads.

    With messages already buffered, StreamReader returns them without suspending, so the next message
    would be handled before the task an async handler started for the previous one took its first step:
    a `workspace/didChangeConfiguration` followed at once by a request would be answered with the old
    settings. pygls's thread reader always suspended there; this keeps LSP's in-order processing."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def readline(self) -> bytes:
        await asyncio.sleep(0)
        return await self._reader.readline()

    async def readexactly(self, n: int) -> bytes:
        return await self._reader.readexactly(n)


async def _read_messages(server: JsonRPCServer, stdin: BinaryIO, stop: threading.Event) -> None:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
    await run_async(
        stop_event=stop,
        reader=_InOrderReader(reader),
        protocol=server.protocol,
        logger=logger,
        error_handler=server.report_server_error,
    )
