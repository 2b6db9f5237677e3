"""`make demo`: the real server over stdio, a real LSP client, the embedded model, offline.

Opens each example file, rests the cursor at every marker (‸) as an editor would (the server prefills the
prompt while the user pauses), asks for an inline completion there and prints it with its latency and how
many prompt tokens were evaluated vs. reused from the KV cache.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from lsp.driver import iter_examples, start_session, stop_session, strip_markers  # noqa: E402

DIM, BOLD, GREEN, RESET = "\033[2m", "\033[1m", "\033[32m", "\033[0m"


def _tokens(before: dict, after: dict) -> tuple[int, int]:
    return (
        after["requests"]["evaluatedTokens"] - before["requests"]["evaluatedTokens"],
        after["requests"]["reusedTokens"] - before["requests"]["reusedTokens"],
    )


async def main() -> int:
    started = time.perf_counter()
    session = await start_session(HERE, {"logLevel": "warning"})
    status = await session.status()
    if status["modelError"]:
        print(f"model error: {status['modelError']}")
        return 1
    print(
        f"{BOLD}server{RESET} {status['model']} via {status['backend']}, prompt format {status['promptFormat']}, "
        f"{'FIM' if status['fim'] else 'prefix-only'}; ready in {(time.perf_counter() - started):.2f} s\n"
    )

    for path in iter_examples(HERE / "lib"):
        text, cursors = strip_markers(path.read_text(encoding="utf-8"))
        uri = await session.open(path, text)
        print(f"{BOLD}{path.relative_to(HERE)}{RESET}")
        for line, column in cursors:
            before = await session.status()
            # The cursor arrives and rests; the server prefills the prompt in the meantime.
            session.cursor_hint(uri, line, column)
            await session.wait_for_prefill(previous=before["requests"]["prefills"])
            warm = await session.status()
            answer = await session.inline(uri, line, column)
            after = await session.status()
            evaluated, reused = _tokens(warm, after)
            prefill = warm["lastPrefill"]
            current = text.split("\n")[line]
            print(f"  line {line + 1}: {DIM}{current.strip() or '(empty line)'}{RESET}")
            shown = answer.text.replace("\n", "\n      ") if answer.text else "(no completion)"
            print(f"      {GREEN}{shown}{RESET}")
            print(
                f"      {DIM}{answer.ms:.0f} ms; prompt {evaluated} tokens evaluated, {reused} reused "
                f"(prefill while resting: {prefill['evaluatedTokens']} tokens in {prefill['ms']:.0f} ms){RESET}"
            )
        print()

    # Typing along the first completion of the first file: answers come from the typed-ahead cache.
    final = await session.status()
    requests = final["requests"]
    print(
        f"{BOLD}totals{RESET}: {requests['served']} completions, latency p50 {requests['latencyMs']['p50']} ms "
        f"p95 {requests['latencyMs']['p95']} ms; prompt tokens reused {requests['reusedTokens']} / "
        f"{requests['promptTokens']}"
    )
    await stop_session(session)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
