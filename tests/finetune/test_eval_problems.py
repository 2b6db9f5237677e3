"""MultiPL-E-format problem files load unchanged (all their fields, default stop tokens, unknown keys kept);
completion files in both shapes; every malformed line is reported as file:line with the field; MultiPL-E's
stop-token cut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.eval.problems import (
    ELIXIR_STOP_TOKENS,
    Problem,
    ProblemError,
    cut_at_stop_tokens,
    load_completions,
    load_problems,
)

PROMPT = (
    "# Add two numbers x and y\n# >>> HumanEval.add(2, 3)\n# 5\n# >>> HumanEval.add(5, 7)\n# 12\n\n"
    "defmodule HumanEval do\n  def candidate(x, y), do: add(x, y)\n  def add(x, y) do\n    "
)
TESTS = (
    "ExUnit.start()\ndefmodule HumanEvalTest do\n  use ExUnit.Case, async: true\n  test 'add' do\n"
    "    assert 1 == HumanEval.candidate(0, 1)\n  end\nend\n"
)
# A line exactly as in nuprl/MultiPL-E humaneval-elixir (reworded).
MULTIPL_E_LINE = {
    "name": "HumanEval_53_add",
    "language": "elixir",
    "prompt": PROMPT,
    "doctests": "transform",
    "original": "../HumanEval/HumanEval_53_add.py",
    "prompt_terminology": "reworded",
    "tests": TESTS,
    "stop_tokens": ["\ndefmodule", "\ndefp", "\ndef ", "\n#", "\n\n"],
}


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_multipl_e_line_loads_unchanged(tmp_path: Path) -> None:
    [problem] = load_problems(write_lines(tmp_path / "humaneval-elixir.jsonl", [MULTIPL_E_LINE]))
    assert problem.name == "HumanEval_53_add"
    assert problem.prompt == PROMPT and problem.tests == TESTS
    assert problem.language == "elixir"
    assert problem.stop_tokens == ("\ndefmodule", "\ndefp", "\ndef ", "\n#", "\n\n")
    # MultiPL-E's own keys that are not Problem fields are kept verbatim.
    assert problem.extra == {
        "doctests": "transform",
        "original": "../HumanEval/HumanEval_53_add.py",
        "prompt_terminology": "reworded",
    }
    hash(problem)  # usable as a key despite the dict


def test_only_name_prompt_tests_are_required(tmp_path: Path) -> None:
    [problem] = load_problems(write_lines(tmp_path / "p.jsonl", [{"name": "p", "prompt": "a", "tests": "b"}]))
    assert problem.stop_tokens == ELIXIR_STOP_TOKENS == ("\ndefmodule", "\ndefp", "\ndef ", "\n#", "\n\n")
    assert problem == Problem(name="p", prompt="a", tests="b")


def test_suite_fields_and_unknown_keys(tmp_path: Path) -> None:
    line = {
        "name": "s1",
        "prompt": "p",
        "tests": "t",
        "entry_point": "add",
        "canonical_solution": "x + y",
        "category": "otp",
        "wrong_solution": "x - y",
    }
    [problem] = load_problems(write_lines(tmp_path / "suite.jsonl", [line]))
    assert (problem.entry_point, problem.canonical_solution, problem.category) == ("add", "x + y", "otp")
    assert problem.extra == {"wrong_solution": "x - y"}


def test_blank_lines_are_skipped_and_order_kept(tmp_path: Path) -> None:
    lines = [{"name": "b", "prompt": "", "tests": ""}, "", "   ", {"name": "a", "prompt": "", "tests": ""}]
    assert [p.name for p in load_problems(write_lines(tmp_path / "p.jsonl", lines))] == ["b", "a"]


GOOD = {"name": "ok", "prompt": "p", "tests": "t"}


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ('{"name": "x", "prompt": ', ["invalid JSON"]),
        ("[1, 2]", ["JSON object", "list"]),
        ({"name": "x", "prompt": "p"}, ["'tests'", "missing"]),
        ({"prompt": "p", "tests": "t"}, ["'name'", "missing"]),
        ({"name": "x", "prompt": 3, "tests": "t"}, ["'prompt'", "string", "int"]),
        ({"name": " ", "prompt": "p", "tests": "t"}, ["'name'", "empty"]),
        ({"name": "x", "prompt": "p", "tests": "t", "stop_tokens": "\n\n"}, ["'stop_tokens'"]),
        ({"name": "x", "prompt": "p", "tests": "t", "stop_tokens": ["\n", 1]}, ["'stop_tokens'"]),
        ({"name": "x", "prompt": "p", "tests": "t", "language": "lua"}, ["'language'", "lua"]),
    ],
)
def test_bad_problem_lines_name_file_line_and_field(tmp_path: Path, bad: object, words: list[str]) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [GOOD, "", bad])
    with pytest.raises(ProblemError) as raised:
        load_problems(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:3: ")
    for word in words:
        assert word in message


def test_duplicate_names_are_an_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "dup.jsonl", [GOOD, {"name": "other", "prompt": "", "tests": ""}, GOOD])
    with pytest.raises(ProblemError, match=r"dup\.jsonl:3: duplicate name 'ok' \(first at line 1\)"):
        load_problems(path)


def test_unreadable_file_is_a_problem_error(tmp_path: Path) -> None:
    with pytest.raises(ProblemError, match="cannot read"):
        load_problems(tmp_path / "absent.jsonl")


def test_completions_both_shapes_accumulate(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "c.jsonl",
        [
            {"name": "a", "completion": "x + y\n  end\nend", "temperature": 0.2},
            {"name": "b", "completions": ["1", "2"]},
            {"name": "a", "completions": ["x - y"]},
            {"name": "b", "completions": []},
        ],
    )
    assert load_completions(path) == {"a": ["x + y\n  end\nend", "x - y"], "b": ["1", "2"]}


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"completion": "x"}, ["'name'"]),
        ({"name": "a"}, ["'completion'", "'completions'"]),
        ({"name": "a", "completion": "x", "completions": ["y"]}, ["exactly one"]),
        ({"name": "a", "completion": 1}, ["'completion'", "string"]),
        ({"name": "a", "completions": ["x", None]}, ["'completions'", "list of strings"]),
        ({"name": "a", "completions": "x"}, ["'completions'"]),
        ("not json", ["invalid JSON"]),
    ],
)
def test_bad_completion_lines_name_file_line(tmp_path: Path, bad: object, words: list[str]) -> None:
    path = write_lines(tmp_path / "c.jsonl", [{"name": "a", "completion": "ok"}, bad])
    with pytest.raises(ProblemError) as raised:
        load_completions(path)
    assert str(raised.value).startswith(f"{path}:2: ")
    for word in words:
        assert word in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x + y\n  end\nend\n\ndefmodule Other do", "x + y\n  end\nend"),  # "\n\n" first
        ("x + y\n  end\n# trailing comment\n\n", "x + y\n  end"),  # earliest wins, not first listed
        ("x + y\n  end\nend\ndefmodule X", "x + y\n  end\nend"),
        ("helper(x)\n  end\n  defp helper(x), do: x\nend", "helper(x)\n  end\n  defp helper(x), do: x\nend"),
        ("x + y\n  end\nend", "x + y\n  end\nend"),  # no stop token: unchanged
        ("\n\nx", ""),
    ],
)
def test_cut_at_stop_tokens_is_multipl_e_rule(text: str, expected: str) -> None:
    assert cut_at_stop_tokens(text, ELIXIR_STOP_TOKENS) == expected


def test_empty_stop_token_is_ignored() -> None:
    assert cut_at_stop_tokens("abc\n\nd", ["", "\n\n"]) == "abc"
