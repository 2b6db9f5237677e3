"""The bundled evaluation suites (finetune/eval/suites/).

Structure checks are pure Python and fast. The execution checks (marked slow) run every canonical solution
(which must pass, together with the `# >>>` examples of its prompt) and every wrong solution (which must
fail an assertion) through the eval harness, and compile the FIM source files.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from finetune.eval.fim_cases import (
    FIM_CASES_FILE,
    FIM_SOURCES_DIR,
    SUITE_PER_FILE,
    SUITE_SEED,
    SUITES_DIR,
    cut_cases,
    dumps_cases,
    is_target,
    suite_sources,
)
from finetune.eval.problems import ELIXIR_STOP_TOKENS, Problem, cut_at_stop_tokens, load_problems

CORE = SUITES_DIR / "elixir_core.jsonl"
CATEGORIES = (
    "pure_functions",
    "pattern_matching",
    "recursion",
    "enum_stream",
    "maps_structs",
    "with_errors",
    "otp",
    "strings_binaries",
    "protocols_behaviours",
)
DIFFICULTIES = ("easy", "medium", "hard")
REQUIRED_KEYS = {
    "name",
    "language",
    "category",
    "prompt",
    "tests",
    "stop_tokens",
    "entry_point",
    "canonical_solution",
    "wrong_solution",
}
# Added after Elixir 1.14; the suite must run on Debian's 1.14.0.
NEWER_THAN_1_14 = (
    "Enum.sum_by",
    "Enum.product_by",
    "Keyword.split_with",
    "Map.split_with",
    "Map.intersect",
    "String.byte_slice",
    "String.replace_invalid",
    "Date.shift",
    "Duration.",
    "is_non_struct_map",
)
# Top-level definitions only (nested `defmodule Item do` is relative to its parent).
MODULE_DEFINITION = re.compile(r"^(?:defmodule|defprotocol)\s+([\w.]+)\s+do$", re.M)

needs_elixir = pytest.mark.skipif(
    shutil.which("elixir") is None,
    reason="elixir is not on PATH: running the suite's canonical and wrong solutions needs it",
)


def raw_problems() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORE.read_text(encoding="utf-8").splitlines()]


def solutions(problem: dict[str, Any]) -> list[tuple[str, str]]:
    return [("canonical", problem["canonical_solution"]), ("wrong", problem["wrong_solution"])]


def doc_examples(prompt: str) -> list[tuple[str, str]]:
    """(call, expected) pairs from the prompt's `# >>> call` / `# expected` lines."""
    lines = prompt.split("\n")
    return [
        (line[len("# >>> ") :], lines[i + 1][len("# ") :])
        for i, line in enumerate(lines)
        if line.startswith("# >>> ")
    ]


# -- elixir_core.jsonl: structure ---------------------------------------------------------------------------


def test_every_line_is_a_problem_with_the_required_keys() -> None:
    lines = CORE.read_text(encoding="utf-8").splitlines()
    assert all(line.strip() for line in lines), "no blank lines"
    for number, line in enumerate(lines, start=1):
        data = json.loads(line)
        missing = REQUIRED_KEYS - data.keys()
        assert not missing, f"line {number}: missing {sorted(missing)}"
        assert all(isinstance(data[key], str) for key in REQUIRED_KEYS - {"stop_tokens"}), number
        assert data["language"] == "elixir"
        assert data["category"] in CATEGORIES, data["name"]
        assert data["difficulty"] in DIFFICULTIES, data["name"]
        assert re.fullmatch(r"core_\d{3}_[a-z0-9_]+", data["name"]), data["name"]


def test_the_harness_loads_the_suite() -> None:
    problems = load_problems(CORE)
    assert [p.name for p in problems] == [p["name"] for p in raw_problems()]
    for problem in problems:
        assert problem.category in CATEGORIES
        assert problem.canonical_solution
        assert problem.extra["wrong_solution"]
        assert problem.extra["difficulty"] in DIFFICULTIES


def test_counts_per_category_and_difficulty() -> None:
    problems = raw_problems()
    assert len(problems) >= 64
    per_category = Counter(p["category"] for p in problems)
    assert set(per_category) == set(CATEGORIES)
    assert min(per_category.values()) >= 6, per_category
    per_difficulty = Counter(p["difficulty"] for p in problems)
    # Roughly a third each.
    assert all(per_difficulty[d] >= len(problems) // 4 for d in DIFFICULTIES), per_difficulty


def test_names_and_modules_are_unique() -> None:
    problems = raw_problems()
    names = [p["name"] for p in problems]
    assert len(set(names)) == len(names)
    owner: dict[str, str] = {}
    for problem in problems:
        number = problem["name"][len("core_") : len("core_000")]
        modules = MODULE_DEFINITION.findall(problem["prompt"])
        assert f"Core{number}" in modules, problem["name"]
        for module in modules:
            assert module == f"Core{number}" or module.startswith(f"Core{number}."), (problem["name"], module)
            assert module not in owner, f"{module} defined by {owner.get(module)} and {problem['name']}"
            owner[module] = problem["name"]
        assert f"defmodule Core{number}Test do" in problem["tests"], problem["name"]


def test_prompts_follow_multipl_e() -> None:
    for problem in raw_problems():
        name, prompt, entry = problem["name"], problem["prompt"], problem["entry_point"]
        assert prompt.endswith("\n    "), name
        comments, _, code = prompt.partition("\n\n")
        assert all(line == "#" or line.startswith("# ") for line in comments.split("\n")), name
        examples = doc_examples(comments)
        assert 1 <= len(examples) <= 3, name
        assert all(f"Core{name[5:8]}" in call for call, _ in examples), name
        assert "def candidate(" in code, name
        last = prompt.rstrip(" ").rstrip("\n").rsplit("\n", 1)[-1]
        assert re.fullmatch(rf"  def {re.escape(entry)}\(.*\) do", last), (name, last)


def test_tests_follow_multipl_e() -> None:
    for problem in raw_problems():
        name, tests = problem["name"], problem["tests"]
        assert tests.startswith("ExUnit.start()\ndefmodule "), name
        assert "  use ExUnit.Case, async: true\n" in tests, name
        assert tests.count("  test '") == 1 and f"  test '{problem['entry_point']}' do\n" in tests, name
        assert tests.endswith("  end\nend\n"), name
        asserts = [line for line in tests.split("\n") if line.startswith("    assert ")]
        assert 4 <= len(asserts) <= 10, (name, len(asserts))
        assert sum(".candidate(" in line for line in asserts) >= 3, name


def test_solutions_survive_the_stop_tokens() -> None:
    for problem in raw_problems():
        assert problem["stop_tokens"] == list(ELIXIR_STOP_TOKENS), problem["name"]
        for label, solution in solutions(problem):
            where = f"{problem['name']} ({label})"
            assert "\n\n" not in solution, where
            assert "\n#" not in solution, where
            assert cut_at_stop_tokens(solution, problem["stop_tokens"]) == solution, where
            assert solution.endswith("\nend") and "\n  end" in solution, where
            assert not solution.startswith((" ", "\n")), where
        assert problem["canonical_solution"] != problem["wrong_solution"], problem["name"]


def test_nothing_newer_than_elixir_1_14() -> None:
    for problem in raw_problems():
        text = problem["prompt"] + problem["canonical_solution"] + problem["tests"]
        used = [name for name in NEWER_THAN_1_14 if name in text]
        assert not used, (problem["name"], used)


# -- FIM cases: structure -----------------------------------------------------------------------------------


def fim_cases() -> list[dict[str, str]]:
    return [json.loads(line) for line in FIM_CASES_FILE.read_text(encoding="utf-8").splitlines()]


def test_fim_sources_are_a_handful_of_realistic_files() -> None:
    sources = suite_sources()
    assert 4 <= len(sources) <= 6
    for path in sources:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert 60 <= len(lines) <= 150, (path.name, len(lines))
        assert lines[0].startswith("def"), path.name


def test_committed_fim_cases_match_the_cutter() -> None:
    """The JSONL is generated from the files: regenerate with `python -m finetune.eval.fim_cases`."""
    cases = cut_cases(suite_sources(), SUITE_PER_FILE, SUITE_SEED)
    assert fim_cases() == cases
    assert FIM_CASES_FILE.read_text(encoding="utf-8") == dumps_cases(cases)


def test_every_fim_case_reassembles_its_file() -> None:
    cases = fim_cases()
    assert len(cases) >= 60
    assert {case["kind"] for case in cases} == {"next_line", "fim_span"}
    assert len({case["name"] for case in cases}) == len(cases)
    for case in cases:
        assert set(case) == {"name", "file", "prefix", "suffix", "expected", "kind"}
        text = (FIM_SOURCES_DIR / case["file"]).read_text(encoding="utf-8")
        assert case["prefix"] + case["expected"] + case["suffix"] == text, case["name"]
        if case["kind"] == "next_line":
            assert case["prefix"] == "" or case["prefix"].endswith("\n"), case["name"]
            assert case["suffix"].startswith("\n"), case["name"]
            assert "\n" not in case["expected"] and is_target(case["expected"]), case["name"]
        else:
            assert case["expected"] == case["expected"].strip() != "", case["name"]


def test_fim_cases_cover_each_file_spread_out() -> None:
    cases = fim_cases()
    per_file = Counter(case["file"] for case in cases)
    assert set(per_file) == {path.name for path in suite_sources()}
    for name in per_file:
        lines = [case["prefix"].count("\n") for case in cases if case["file"] == name]
        assert lines == sorted(lines), name
        total = (FIM_SOURCES_DIR / name).read_text(encoding="utf-8").count("\n")
        assert lines[0] < total / 4 and lines[-1] > 3 * total / 4, (name, lines)


# -- the cutter ---------------------------------------------------------------------------------------------

SAMPLE = """defmodule Sample do
  @moduledoc "A sample."

  def double(x) do
    x * 2
  end

  def greet(name) do
    greeting = "Hello, " <> name
    String.upcase(greeting)
  end

  defp helper(list) do
    list
    |> Enum.map(&double/1)
    |> Enum.sum()
  end
end
"""


def test_cutter_is_deterministic_and_skips_trivial_lines(tmp_path: Path) -> None:
    path = tmp_path / "sample.ex"
    path.write_text(SAMPLE, encoding="utf-8")
    first = cut_cases([path], 5, 7)
    assert first == cut_cases([path], 5, 7)
    assert len(first) == 5
    assert [case["kind"] for case in first] == ["next_line", "fim_span"] * 2 + ["next_line"]
    for case in first:
        assert case["prefix"] + case["expected"] + case["suffix"] == SAMPLE
        assert case["file"] == "sample.ex"
        assert case["name"].startswith("sample_")
        assert case["expected"].strip() not in ("", "end")
    # Asking for more cases than there are candidate lines takes every candidate once.
    every = cut_cases([path], 100, 7)
    candidates = [line for line in SAMPLE.splitlines() if is_target(line)]
    assert len(every) == len(candidates) == 11


def test_cutter_depends_on_the_seed(tmp_path: Path) -> None:
    path = tmp_path / "sample.ex"
    path.write_text(SAMPLE, encoding="utf-8")
    variants = {json.dumps(cut_cases([path], 3, seed)) for seed in range(8)}
    assert len(variants) > 1


@pytest.mark.parametrize(
    ("line", "target"),
    [
        ("", False),
        ("   ", False),
        ("  end", False),
        ("    end)", False),
        ("      ]", False),
        ('  """', False),
        ("  def go(x) do", True),
        ("    |> Enum.sum()", True),
        ("  @doc false", True),
    ],
)
def test_is_target(line: str, target: bool) -> None:
    assert is_target(line) is target


# -- execution (slow) ---------------------------------------------------------------------------------------


def with_doc_examples(problem: Problem) -> Problem:
    """The problem with a second ExUnit module asserting the prompt's `# >>>` examples."""
    checks = "".join(f"    assert {expected} == {call}\n" for call, expected in doc_examples(problem.prompt))
    module = re.search(r"defmodule (\w+)Test do", problem.tests)
    assert module, problem.name
    extra = (
        f"defmodule {module.group(1)}DocExamplesTest do\n  use ExUnit.Case, async: true\n"
        f"  test 'examples' do\n{checks}  end\nend\n"
    )
    return dataclasses.replace(problem, tests=problem.tests + extra)


@pytest.mark.slow
@needs_elixir
def test_canonical_solutions_pass_and_wrong_solutions_fail() -> None:
    from finetune.eval.execute import run_many
    from finetune.eval.sandbox import Limits

    problems = load_problems(CORE)
    jobs = [(with_doc_examples(p), p.canonical_solution) for p in problems]
    jobs += [(p, p.extra["wrong_solution"]) for p in problems]
    # A generous timeout (the machine may be busy; every program takes about a second), otherwise the
    # sandbox's default limits: the suite must run under what `finetune eval` uses.
    outcomes = run_many(jobs, Limits(timeout_s=30))
    canonical, wrong = outcomes[: len(problems)], outcomes[len(problems) :]
    failing = {
        p.name: (o.status, (o.stdout + o.stderr)[-600:])
        for p, o in zip(problems, canonical, strict=True)
        if not o.passed
    }
    assert not failing, failing
    not_assertion = {
        p.name: (o.status, (o.stdout + o.stderr)[-600:])
        for p, o in zip(problems, wrong, strict=True)
        if o.status != "AssertionError"
    }
    assert not not_assertion, not_assertion


@pytest.mark.slow
@needs_elixir
def test_fim_sources_compile_without_warnings(tmp_path: Path) -> None:
    elixirc = shutil.which("elixirc")
    assert elixirc, "elixirc should come with elixir"
    sources = [str(path) for path in suite_sources()]
    done = subprocess.run(
        [elixirc, "--warnings-as-errors", "-o", str(tmp_path), *sources],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(tmp_path.glob("*.beam"))
