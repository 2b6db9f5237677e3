"""Listing "Make idiomatic" code actions on a 2,000-line file through the real server over stdio.

A 2k-line file is assembled from the idiom corpus and the examples (modules renamed apart). The client
then does what an editor does: moves the cursor (a `textDocument/codeAction` request per move, timed as
the client sees it), and types (an edit before each request, so the server's per-version analysis cache
never helps). Also timed: resolving a rule action and fix-all of the whole file.

Baseline, in this process: the naive way, a full parse and every rule over the whole file with each
finding re-parsed, for every request. Target: listing p95 ≤ 50 ms.

Usage: python bench/code_actions.py [--requests N] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsp.actions.service import FIX_ALL_KIND, IdiomService, warm_up  # noqa: E402
from lsp.config import IdiomSettings  # noqa: E402
from lsp.documents import Document, Position  # noqa: E402
from lsp.driver import start_session, stop_session  # noqa: E402
from lsp.idioms.elixir_check import ElixirChecker  # noqa: E402
from lsp.idioms.engine import checked_findings  # noqa: E402
from lsp.idioms.registry import DEFAULT_ELIXIR_VERSION, active_rules  # noqa: E402
from lsp.syntax.parser import make_parser  # noqa: E402

SOURCES = sorted((ROOT / "tests" / "idioms" / "corpus").glob("*.ex")) + sorted((ROOT / "examples" / "lib").glob("*.ex"))


def build_file(min_lines: int = 2000) -> str:
    parts: list[str] = []
    copy = 0
    while sum(part.count("\n") for part in parts) < min_lines:
        for path in SOURCES:
            text = path.read_text(encoding="utf-8").replace("‸", "")
            # Rename every module so the copies are distinct modules.
            parts.append(re.sub(r"defmodule ([A-Z][\w.]*)", rf"defmodule Copy{copy}.\1", text))
        copy += 1
    return "\n".join(parts)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 2), "p95": round(percentile(values, 0.95), 2),
            "max": round(max(values), 2), "n": len(values)}


# The rules the server runs with no settings (the installed Elixir decides the version).
RULES = active_rules(IdiomSettings(), ElixirChecker().version() or DEFAULT_ELIXIR_VERSION)


def naive_listing(text: str, line: int) -> float:
    started = time.perf_counter()
    data = text.encode()
    tree = make_parser().parse(data)
    findings = checked_findings(RULES, tree, data)
    line_start = len("\n".join(text.split("\n")[:line]).encode()) + 1
    _ = [f for f in findings if f.start <= line_start <= f.end]
    return (time.perf_counter() - started) * 1000


def diagnostics_analysis(text: str, edits: int = 20) -> tuple[float, dict[str, float]]:
    """Whole-file analysis (what diagnostics need): the first one, then incremental ones after edits."""
    service = IdiomService()
    service.configure(IdiomSettings(elixir_path=""), None)
    warm_up(service.rules, None)
    doc = Document("file:///bench.ex", text, 1)
    started = time.perf_counter()
    service.analyse(doc)
    first = (time.perf_counter() - started) * 1000
    times = []
    for index in range(edits):
        line = (index + 1) * (doc.line_count // (edits + 1))
        doc.apply_change(Position(line, 0), Position(line, 0), "    x = 1\n", index + 2)
        started = time.perf_counter()
        service.analyse(doc)
        times.append((time.perf_counter() - started) * 1000)
    return first, summary(times)


async def run(requests: int) -> dict:
    text = build_file()
    lines = text.split("\n")
    path = ROOT / "bench" / "generated_2k.ex"
    # Idle prefill off: model work must not compete with the listing being timed.
    session = await start_session(ROOT, {"completion": {"prefill": False, "speculative": False}})
    try:
        uri = await session.open(path, text)
        await asyncio.sleep(1.0)
        step = max(1, len(lines) // requests)
        cursor_lines = list(range(0, len(lines), step))[:requests]
        moves, typing = [], []
        offered = 0
        for line in cursor_lines:
            actions, ms = await session.code_actions(uri, (line, len(lines[line]) // 2))
            moves.append(ms)
            offered += sum(a.title.startswith("Make idiomatic:") for a in actions)
        for line in cursor_lines:
            # A trailing space at the end of the line: a new version, so nothing is cached.
            session.insert(uri, line, len(session.texts[uri].split("\n")[line]), " ")
            _actions, ms = await session.code_actions(uri, (line, 0))
            typing.append(ms)
        rule_resolves = []
        for line in cursor_lines:
            actions, _ = await session.code_actions(uri, (line, 4))
            rule = next((a for a in actions if a.kind == "quickfix"), None)
            if rule is not None:
                rule_resolves.append((await session.resolve(rule))[1])
        fix_all, _ = await session.code_actions(uri, (0, 0), only=[FIX_ALL_KIND])
        fix_all_ms = (await session.resolve(fix_all[0]))[1] if fix_all else None
    finally:
        await stop_session(session)
    naive = [naive_listing(text, line) for line in cursor_lines[: max(10, requests // 5)]]
    move_stats, typing_stats, naive_stats = summary(moves), summary(typing), summary(naive)
    first_analysis, incremental = diagnostics_analysis(text)
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()} {platform.release()}",
        "file_lines": len(lines),
        "rules": len(RULES),
        "actions_offered": offered,
        "listing_cursor_moves_ms": move_stats,
        "listing_after_edit_ms": typing_stats,
        "naive_full_file_ms": naive_stats,
        "ratio_p95_after_edit_vs_naive": round(typing_stats["p95"] / naive_stats["p95"], 3),
        "resolve_rule_ms": summary(rule_resolves) if rule_resolves else None,
        "resolve_fix_all_whole_file_ms": round(fix_all_ms, 1) if fix_all_ms else None,
        "diagnostics_first_analysis_ms": round(first_analysis, 1),
        "diagnostics_after_one_line_edit_ms": incremental,
        "target_p95_ms": 50,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(run(args.requests))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
