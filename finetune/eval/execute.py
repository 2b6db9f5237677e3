"""Run a completion the way MultiPL-E does (prompt + completion + "\\n" + tests → `elixir`), in the sandbox,
and classify the outcome with MultiPL-E's statuses (plus CompileError, split out of Exception)."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from finetune.eval.problems import Problem
from finetune.eval.sandbox import Limits, SandboxResult, run_sandboxed

STATUSES = ("OK", "AssertionError", "SyntaxError", "CompileError", "Timeout", "Exception")
PROGRAM_FILE = "program.exs"  # fixed, so identical programs give identical output (the cache is per program)
# Crash dumps (e.g. after a failed 10 GB allocation) would take seconds and disk: the status says enough.
ELIXIR_ENV = {"ERL_CRASH_DUMP_SECONDS": "0"}

# What Elixir prints for code that does not parse (1.14: SyntaxError, TokenMissingError;
# 1.15+: MismatchedDelimiterError too).
_SYNTAX = ("** (SyntaxError)", "** (TokenMissingError)", "** (MismatchedDelimiterError)")
# Code that parses but does not compile (undefined local function, unbound variable…). 1.15+ logs
# "error: …" lines and ends with "** (CompileError) … cannot compile module".
_COMPILE = ("** (CompileError)",)
# ExUnit's failure messages for its assertions: `assert a == b` (MultiPL-E's only check) and the other
# operators ("Assertion with === failed", "Assertion with < failed"…), bare `assert`/`refute`,
# `assert x = pattern`, `assert_raise`, `assert_receive`.
_ASSERTION = (
    "Assertion with ",
    "Expected truthy, got ",
    "Expected false or nil, got ",
    "match (=) failed",
    "Expected exception ",
    "Assertion failed, no matching message",
    "** (ExUnit.AssertionError)",
)
# One failure in ExUnit's report: "  1) test add (HumanEvalTest)" up to the next one or the summary.
_FAILURE = re.compile(r"^ +\d+\) test .*?(?=^ +\d+\) test |^Finished in |\Z)", re.MULTILINE | re.DOTALL)


class ElixirNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class Outcome:
    status: str
    exit_code: int | None
    seconds: float
    stdout: str
    stderr: str

    @property
    def passed(self) -> bool:
        # MultiPL-E's pass_k.py: status OK *and* exit code 0.
        return self.status == "OK" and self.exit_code == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def program_for(problem: Problem, completion: str) -> str:
    """MultiPL-E's evaluation/src/main.py: `prompt + completion + "\\n" + tests`."""
    return problem.prompt + completion + "\n" + problem.tests


def classify(result: SandboxResult) -> str:
    """MultiPL-E's eval_elixir.py rules, refined. Errors that stop the file from compiling are checked
    before assertion texts: then no test ran, so an assertion text could only be program output."""
    if result.timed_out:
        return "Timeout"
    if result.exit_code == 0:
        return "OK"
    output = result.stdout + "\n" + result.stderr
    if any(marker in output for marker in _SYNTAX):
        return "SyntaxError"
    if any(marker in output for marker in _COMPILE):
        return "CompileError"
    if _assertion_failed(output):
        return "AssertionError"
    return "Exception"


def _assertion_failed(output: str) -> bool:
    if any(marker in output for marker in _ASSERTION):
        return True
    # ExUnit reports an exception raised in a test as "** (RuntimeError) boom" and its own assertion
    # errors by their bare message — which for flunk/1 or `assert x, "message"` is any text.
    return any("** (" not in failure for failure in _FAILURE.findall(output))


def find_elixir(elixir: str = "elixir") -> str:
    """Absolute path of the `elixir` launcher (the sandbox's PATH may differ from ours)."""
    path = shutil.which(elixir)
    if path is None:
        raise ElixirNotFound(f"elixir not found ({elixir!r}); install Elixir (e.g. apt-get install elixir)")
    return path


def run_program(program: str, limits: Limits, elixir: str = "elixir") -> Outcome:
    result = run_sandboxed([find_elixir(elixir), PROGRAM_FILE], {PROGRAM_FILE: program}, limits, ELIXIR_ENV)
    return Outcome(
        status=classify(result),
        exit_code=result.exit_code,
        seconds=result.seconds,
        stdout=result.stdout,
        stderr=result.stderr,
    )


def run_completion(problem: Problem, completion: str, limits: Limits, elixir: str = "elixir") -> Outcome:
    return run_program(program_for(problem, completion), limits, elixir)


def default_workers() -> int:
    # MultiPL-E: cpu_count() - 1 — one core stays free for the harness (and the machine).
    return max(1, (os.cpu_count() or 1) - 1)


def run_many(
    jobs: Sequence[tuple[Problem, str]],
    limits: Limits,
    workers: int | None = None,
    elixir: str = "elixir",
    progress: Callable[[int, int], None] | None = None,
) -> list[Outcome]:
    """Outcomes of (problem, completion) jobs, in order. Each distinct program runs once (MultiPL-E
    caches per program string: n samples at T=0.2 repeat a lot). `progress(done, total)` counts distinct
    programs, from the worker threads."""
    path = find_elixir(elixir)  # fail once, before starting anything
    programs = [program_for(problem, completion) for problem, completion in jobs]
    unique = list(dict.fromkeys(programs))
    done = 0
    lock = threading.Lock()

    def run(program: str) -> Outcome:
        nonlocal done
        outcome = run_program(program, limits, path)
        if progress is not None:
            with lock:
                done += 1
                progress(done, len(unique))
        return outcome

    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        results = dict(zip(unique, pool.map(run, unique), strict=True))
    return [results[program] for program in programs]
