"""`devstral-elixir-lsp`: run the language server over stdio (default) or TCP."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from lsp import __version__

GIL_SWITCH_INTERVAL_S = 0.0005


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstral-elixir-lsp", description=__doc__)
    parser.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (the default)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP socket instead of stdio")
    parser.add_argument("--log-file", help="write the server's own debug log here")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)

    if args.log_file:
        logging.basicConfig(filename=args.log_file, level=logging.DEBUG)
    else:
        # stdout carries the protocol; our own log goes to stderr, warnings only.
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

    # Generation runs on a worker thread that needs the GIL back after every llama.cpp call; with the
    # default 5 ms switch interval a busy event loop (diagnostics, a big didChange) could delay each
    # token by up to 5 ms.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)

    from lsp.server import server
    from lsp.transport import serve_stdio

    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not host or not port.isdigit():
            parser.error(f"--tcp expects HOST:PORT, got {args.tcp!r}")
        server.start_tcp(host, int(port))
    else:
        # LSP gets a private duplicate of stdout; fd 1 itself then points at stderr, so native code
        # (llama.cpp) printing to stdout, or redirecting it, can never corrupt or swallow the protocol.
        protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        serve_stdio(server, sys.stdin.buffer, protocol_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
