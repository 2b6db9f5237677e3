"""Score given completions (`finetune eval --completions FILE`): run each, count passes, pass@k per problem
and overall, with the toolchain, machine and sandbox recorded — results depend on all three."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from functools import cache
from typing import Any

from finetune.eval.execute import STATUSES, find_elixir, run_many
from finetune.eval.passk import aggregate, not_computable, pass_at_k
from finetune.eval.problems import Problem
from finetune.eval.sandbox import Limits, isolation

DEFAULT_KS = (1, 10, 100)


class ScoreError(ValueError):
    pass


@cache
def elixir_version(elixir: str = "elixir") -> dict[str, str]:
    """`elixir --version` (trusted: our own toolchain). Stdlib functions differ between versions
    (Enum.sum_by/2 is 1.18+), so a pass rate means little without it."""
    try:
        done = subprocess.run(
            [find_elixir(elixir), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError, RuntimeError) as error:
        return {"error": str(error)}
    raw = (done.stdout + done.stderr).strip()
    elixir_match = re.search(r"Elixir (\S+)", raw)
    otp_match = re.search(r"Erlang/OTP (\S+)", raw)
    return {
        "elixir": elixir_match.group(1) if elixir_match else "",
        "otp": otp_match.group(1) if otp_match else "",
        "raw": raw,
    }


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def _problem_entry(texts: Sequence[str], outcomes: Sequence[Any], ks: Iterable[int]) -> dict[str, Any]:
    n = len(outcomes)
    c = sum(outcome.passed for outcome in outcomes)
    return {
        "n": n,
        "c": c,
        "statuses": [outcome.status for outcome in outcomes],
        "pass@k": {str(k): pass_at_k(n, c, k) if k <= n else None for k in ks},
        # Kept so a run can be read, and scored again with --completions, without generating again.
        "completions": list(texts),
        "results": [outcome.as_dict() for outcome in outcomes],
    }


def score_completions(
    problems: Sequence[Problem],
    completions: Mapping[str, Sequence[str]],
    limits: Limits,
    ks: Sequence[int] = DEFAULT_KS,
    workers: int | None = None,
    elixir: str = "elixir",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """JSON-serialisable report. pass@k overall is the mean over the problems that have completions;
    problems without any are listed under "missing"; a k above some problem's n is null, and
    "not_computable" names those problems."""
    by_name = {problem.name: problem for problem in problems}
    unknown = sorted(set(completions) - set(by_name))
    if unknown:
        shown = ", ".join(repr(name) for name in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise ScoreError(f"completions for unknown problem(s): {shown}{more}")
    ks = sorted(set(ks))
    if not ks or ks[0] < 1:
        raise ScoreError(f"k values must be >= 1 (got {ks})")

    jobs = [(by_name[name], text) for name, texts in completions.items() for text in texts]
    start = time.monotonic()
    outcomes = run_many(jobs, limits, workers, elixir, progress)
    seconds = time.monotonic() - start

    grouped: dict[str, list[Any]] = {}
    for (problem, _text), outcome in zip(jobs, outcomes, strict=True):
        grouped.setdefault(problem.name, []).append(outcome)
    scored = [problem.name for problem in problems if grouped.get(problem.name)]
    per_problem = {name: _problem_entry(completions[name], grouped[name], ks) for name in scored}
    counts = {name: (entry["n"], entry["c"]) for name, entry in per_problem.items()}
    overall = aggregate(counts, ks)
    status_counts = Counter(outcome.status for outcome in outcomes)
    return {
        "pass@k": {str(k): value for k, value in overall.items()},
        "not_computable": {str(k): names for k in ks if (names := not_computable(counts, k))},
        "problems_scored": len(scored),
        "missing": [problem.name for problem in problems if problem.name not in per_problem],
        "completions": len(jobs),
        "status_counts": {status: status_counts.get(status, 0) for status in STATUSES},
        "problems": per_problem,
        "seconds": round(seconds, 3),
        "toolchain": elixir_version(elixir),
        "machine": machine(),
        "sandbox": isolation().as_dict(),
        "limits": asdict(limits),
    }
