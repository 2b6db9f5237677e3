"""`make demo`: the real server over stdio, a real LSP client, the embedded model, offline.

Completions: opens each file of examples/lib, rests the cursor at every marker (‸) as an editor would (the
server prefills the prompt while the user pauses), asks for an inline completion there and prints it with
its latency and how many prompt tokens were evaluated vs. reused from the KV cache.

Make idiomatic: opens examples/idioms/weekly_report.ex, prints the server's diagnostics, lists and
resolves the code actions on each flagged line, runs fix-all on the file and the model rewrite on one
function, each with its latency.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from lsp.actions.service import FIX_ALL_KIND, MODEL_TITLE  # noqa: E402
from lsp.driver import (  # noqa: E402
    EditorSession,
    apply_text_edits,
    iter_examples,
    start_session,
    stop_session,
    strip_markers,
    workspace_edits_for,
)

DIM, BOLD, GREEN, RED, RESET = "\033[2m", "\033[1m", "\033[32m", "\033[31m", "\033[0m"
IDIOMS_EXAMPLE = HERE / "idioms" / "weekly_report.ex"


def _changed_lines(before: str, after: str) -> list[str]:
    import difflib

    diff = difflib.unified_diff(before.split("\n"), after.split("\n"), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def _print_diff(before: str, after: str) -> None:
    for line in _changed_lines(before, after):
        colour = GREEN if line.startswith("+") else RED
        print(f"      {colour}{line}{RESET}")


async def _wait_for_diagnostics(session: EditorSession, uri: str, timeout_s: float = 30.0) -> list:
    deadline = time.monotonic() + timeout_s
    while uri not in session.diagnostics and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return session.diagnostics.get(uri, [])


async def make_idiomatic(session: EditorSession) -> None:
    text = IDIOMS_EXAMPLE.read_text(encoding="utf-8")
    uri = await session.open(IDIOMS_EXAMPLE, text)
    print(f"{BOLD}Make idiomatic: {IDIOMS_EXAMPLE.relative_to(HERE)}{RESET}")
    diagnostics = await _wait_for_diagnostics(session, uri)
    print(f"  {len(diagnostics)} diagnostics")
    seen_lines = set()
    for diagnostic in sorted(diagnostics, key=lambda d: d.range.start.line):
        line = diagnostic.range.start.line
        if line in seen_lines:
            continue
        seen_lines.add(line)
        start = (line, diagnostic.range.start.character)
        actions, list_ms = await session.code_actions(uri, start)
        rule_action = next((a for a in actions if a.kind in ("quickfix", "refactor.rewrite") and a.title != MODEL_TITLE), None)
        print(f"  line {line + 1} [{diagnostic.code}]: {len(actions)} actions listed in {list_ms:.1f} ms")
        if rule_action is None:
            continue
        resolved, resolve_ms = await session.resolve(rule_action)
        print(f"    {rule_action.title} {DIM}(resolved in {resolve_ms:.1f} ms){RESET}")
        if resolved.edit is not None:
            _print_diff(text, apply_text_edits(text, workspace_edits_for(resolved.edit, uri)))
    fix_all, list_ms = await session.code_actions(uri, (0, 0), only=[FIX_ALL_KIND])
    if fix_all:
        resolved, resolve_ms = await session.resolve(fix_all[0])
        edits = workspace_edits_for(resolved.edit, uri)
        fixed = apply_text_edits(text, edits)
        print(f"  {fix_all[0].title}: {len(edits)} edits, listed {list_ms:.1f} ms, resolved {resolve_ms:.0f} ms")
        _print_diff(text, fixed)
    line = text.split("\n").index("  def warn_if_empty(orders) do") + 1
    actions, _ = await session.code_actions(uri, (line, 4))
    model = next((a for a in actions if a.title == MODEL_TITLE), None)
    if model is not None:
        resolved, resolve_ms = await session.resolve(model)
        print(f"  {MODEL_TITLE} on warn_if_empty/1 ({resolve_ms:.0f} ms):")
        if resolved.edit is not None:
            _print_diff(text, apply_text_edits(text, workspace_edits_for(resolved.edit, uri)))
        else:
            reason = resolved.disabled.reason if resolved.disabled else "no edit"
            print(f"      {DIM}not offered: {reason}{RESET}")
    print()


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

    await make_idiomatic(session)

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
