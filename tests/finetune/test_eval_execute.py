"""Execution and scoring against real `elixir`: MultiPL-E's program assembly, statuses from real Elixir
output (right, wrong, syntax error, missing `end`, compile error, runtime error, timeout; ExUnit's other
assertion kinds), the per-program cache, and `--completions` scoring of a MultiPL-E-format file end to end."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from finetune.eval.execute import (
    ElixirNotFound,
    Outcome,
    classify,
    program_for,
    run_completion,
    run_many,
)
from finetune.eval.problems import Problem, load_completions, load_problems
from finetune.eval.sandbox import Limits, SandboxResult, run_sandboxed
from finetune.eval.score import ScoreError, score_completions

needs_elixir = pytest.mark.skipif(shutil.which("elixir") is None, reason="elixir is not installed")

ADD = {
    "name": "HumanEval_53_add",
    "language": "elixir",
    "prompt": "# Add two numbers x and y\n# >>> HumanEval.add(2, 3)\n# 5\n\n"
    "defmodule HumanEval do\n  def candidate(x, y), do: add(x, y)\n  def add(x, y) do\n    ",
    "doctests": "transform",
    "original": "../HumanEval/HumanEval_53_add.py",
    "prompt_terminology": "reworded",
    "tests": "ExUnit.start()\ndefmodule HumanEvalTest do\n  use ExUnit.Case, async: true\n  test 'add' do\n"
    "    assert 1 == HumanEval.candidate(0, 1)\n  end\nend\n",
    "stop_tokens": ["\ndefmodule", "\ndefp", "\ndef ", "\n#", "\n\n"],
}
DOUBLE = {
    "name": "HumanEval_900_double",
    "prompt": "defmodule HumanEval do\n  def candidate(x), do: double(x)\n  def double(x) do\n    ",
    "tests": "ExUnit.start()\ndefmodule HumanEvalTest do\n  use ExUnit.Case, async: true\n  test 'double' do\n"
    "    assert 4 == HumanEval.candidate(2)\n  end\nend\n",
}
MISSING = {"name": "HumanEval_901_missing", "prompt": "", "tests": ""}

RIGHT = "x + y\n  end\nend"
COMPLETIONS = {
    "right": RIGHT,
    "wrong": "x - y\n  end\nend",
    "syntax": "x +\n  end\nend",
    "missing_end": "x + y\n  end",  # the module is never closed: TokenMissingError
    "compile": "undefined_helper(x, y)\n  end\nend",
    "runtime": 'raise "boom"\n  end\nend',
    "undefined_remote": "String.no_such_function(x) + y\n  end\nend",
    "timeout": "loop = fn f -> f.(f) end\n    loop.(loop)\n  end\nend",
}
EXPECTED = {
    "right": "OK",
    "wrong": "AssertionError",
    "syntax": "SyntaxError",
    "missing_end": "SyntaxError",
    "compile": "CompileError",
    "runtime": "Exception",
    "undefined_remote": "Exception",  # compiles (with a warning), fails when called
    "timeout": "Timeout",
}
LIMITS = Limits(timeout_s=4)


def add_problem() -> Problem:
    return Problem(name=ADD["name"], prompt=ADD["prompt"], tests=ADD["tests"])


def test_program_is_prompt_completion_newline_tests() -> None:
    problem = add_problem()
    assert program_for(problem, RIGHT) == ADD["prompt"] + RIGHT + "\n" + ADD["tests"]


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (SandboxResult(None, True, "", "", 5.0, "timeout"), "Timeout"),
        (SandboxResult(0, False, "Assertion with == failed", "", 0.5, ""), "OK"),  # exit 0 wins
        (SandboxResult(1, False, "", "", 0.5, ""), "Exception"),
        (SandboxResult(-9, False, "", "", 0.5, "signal SIGKILL"), "Exception"),
    ],
)
def test_classify_without_output_rules(result: SandboxResult, status: str) -> None:
    assert classify(result) == status


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    problem = add_problem()
    names = list(COMPLETIONS)
    results = run_many([(problem, COMPLETIONS[name]) for name in names], LIMITS)
    return dict(zip(names, results, strict=True))


@needs_elixir
@pytest.mark.parametrize("name", list(COMPLETIONS))
def test_status_from_real_elixir(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[name]
    assert outcome.status == EXPECTED[name], f"{name}: {outcome}"
    assert outcome.passed == (name == "right")
    if name == "timeout":
        assert outcome.exit_code is None and outcome.seconds < LIMITS.timeout_s + 1
    else:
        assert outcome.seconds < LIMITS.timeout_s


@needs_elixir
def test_real_outputs_name_the_error() -> None:
    # What each status rests on, as Elixir 1.14 prints it (guards against a silent format change).
    problem = add_problem()
    wrong = run_completion(problem, COMPLETIONS["wrong"], LIMITS)
    assert "Assertion with == failed" in wrong.stdout and wrong.exit_code == 2
    compile_error = run_completion(problem, COMPLETIONS["compile"], LIMITS)
    assert "undefined function undefined_helper/2" in compile_error.stderr


ASSERTION_KINDS = """ExUnit.start()
defmodule Kinds do
  use ExUnit.Case
  test "strict", do: assert(1 === 1.0)
  test "less", do: assert(2 < 1)
  test "not equal", do: assert(1 != 1)
  test "truthy", do: assert(Enum.empty?([1]))
  test "refute", do: refute(Enum.empty?([]))
  test "match", do: assert({:ok, _} = Enum.at([{:error, 1}], 0))
  test "raise", do: assert_raise(ArgumentError, fn -> :ok end)
  test "raise other", do: assert_raise(ArgumentError, fn -> raise "x" end)
  test "received", do: assert_received(:never)
  test "flunk", do: flunk("no")
end
"""


@needs_elixir
def test_every_exunit_assertion_failure_is_an_assertion_error() -> None:
    result = run_sandboxed(
        [shutil.which("elixir") or "elixir", "kinds.exs"],
        {"kinds.exs": ASSERTION_KINDS},
        Limits(timeout_s=10, output_chars=100_000),
        {"ERL_CRASH_DUMP_SECONDS": "0"},
    )
    assert "10 tests, 10 failures" in result.stdout, result.stdout + result.stderr
    blocks = re.split(r"\n(?= +\d+\) test )", result.stdout)[1:]
    assert len(blocks) == 10
    for block in blocks:
        alone = SandboxResult(result.exit_code, False, block, "", result.seconds, "")
        assert classify(alone) == "AssertionError", block


@needs_elixir
def test_run_many_runs_each_distinct_program_once() -> None:
    problem = add_problem()
    seen: list[tuple[int, int]] = []
    results = run_many(
        [(problem, RIGHT), (problem, COMPLETIONS["wrong"]), (problem, RIGHT)],
        LIMITS,
        workers=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert [r.status for r in results] == ["OK", "AssertionError", "OK"]
    assert results[0] is results[2]  # cached, not rerun
    assert sorted(seen) == [(1, 2), (2, 2)]


def test_missing_elixir_is_named() -> None:
    with pytest.raises(ElixirNotFound, match="no-such-elixir"):
        run_completion(add_problem(), RIGHT, LIMITS, elixir="no-such-elixir")


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@needs_elixir
def test_score_completions_end_to_end(tmp_path: Path) -> None:
    problems = load_problems(write_jsonl(tmp_path / "humaneval-elixir.jsonl", [ADD, DOUBLE, MISSING]))
    add_names = ["right", "wrong", "syntax", "timeout", "compile", "right"]
    completions = load_completions(
        write_jsonl(
            tmp_path / "completions.jsonl",
            [
                {"name": ADD["name"], "completions": [COMPLETIONS[n] for n in add_names[:3]]},
                {"name": DOUBLE["name"], "completion": "x * 2\n  end\nend"},
                {"name": ADD["name"], "completions": [COMPLETIONS[n] for n in add_names[3:]]},
                {"name": DOUBLE["name"], "completion": 'raise "no"\n  end\nend'},
            ],
        )
    )
    report = score_completions(problems, completions, LIMITS, ks=[1, 2, 5], workers=2)
    json.dumps(report)  # serialisable as it stands

    add, double = report["problems"][ADD["name"]], report["problems"][DOUBLE["name"]]
    assert add["statuses"] == [EXPECTED[n] for n in add_names]
    assert (add["n"], add["c"]) == (6, 2)
    assert add["pass@k"]["1"] == pytest.approx(2 / 6)
    assert add["pass@k"]["2"] == pytest.approx(1 - 6 / 15)  # 1 - C(4,2)/C(6,2)
    assert add["pass@k"]["5"] == 1.0  # n - c < k
    assert double["statuses"] == ["OK", "Exception"]
    assert double["pass@k"] == {"1": 0.5, "2": 1.0, "5": None}

    assert report["pass@k"]["1"] == pytest.approx((2 / 6 + 0.5) / 2)
    assert report["pass@k"]["2"] == pytest.approx((0.6 + 1.0) / 2)
    assert report["pass@k"]["5"] is None
    assert report["not_computable"] == {"5": [DOUBLE["name"]]}
    assert report["missing"] == [MISSING["name"]]
    assert report["problems_scored"] == 2 and report["completions"] == 8
    assert report["status_counts"]["OK"] == 3 and report["status_counts"]["Timeout"] == 1
    assert re.match(r"\d+\.\d+", report["toolchain"]["elixir"]) and report["toolchain"]["otp"]
    assert report["machine"]["platform"] and "network" in report["sandbox"]


def test_completion_for_unknown_problem_is_named() -> None:
    with pytest.raises(ScoreError, match="HumanEval_999_nope"):
        score_completions([add_problem()], {"HumanEval_999_nope": ["x"]}, LIMITS)
