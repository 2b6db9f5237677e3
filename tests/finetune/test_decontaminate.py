from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from finetune.dataset.build import BuildOptions, build_datasets
from finetune.dataset.clean import Drop
from finetune.dataset.decontaminate import (
    DecontaminationConfig,
    Decontaminator,
    EvalProblem,
    bundled_eval_problems,
    load_problems,
    problem_from_json,
    word_tokens,
)
from finetune.records import Provenance, Record, Skipped
from finetune.store import CollectionWriter

# MultiPL-E-shaped problems (written for this test). Every test opens with the same ExUnit set-up.
TEST_HEAD = (
    "ExUnit.start()\ndefmodule HumanEvalTest do\n  use ExUnit.Case, async: true\n  test 'candidate' do\n"
)


def problem(name: str, doc: str, signature: str, solution: str, assertions: str) -> dict[str, str]:
    return {
        "name": name,
        "language": "elixir",
        "prompt": f"# {doc}\n\ndefmodule HumanEval do\n"
        f"  def candidate(x), do: {signature}\n  def {signature} do\n",
        "canonical_solution": solution,
        "tests": TEST_HEAD + assertions + "  end\nend\n",
        "stop_tokens": ["\ndefmodule", "\n#"],
    }


PROBLEMS = [
    problem(
        "HumanEval_12_longest_even_run",
        "Given a list of integers, return the length of the longest run of consecutive even numbers.\n"
        "# iex> HumanEval.longest_even_run([2, 4, 1, 6, 8, 10])\n# 3",
        "longest_even_run(numbers)",
        "    numbers\n    |> Enum.chunk_by(&(rem(&1, 2) == 0))\n"
        "    |> Enum.filter(fn [head | _] -> rem(head, 2) == 0 end)\n"
        "    |> Enum.map(&length/1)\n    |> Enum.max(fn -> 0 end)\n  end\nend\n",
        "    assert 3 == HumanEval.candidate([2, 4, 1, 6, 8, 10])\n"
        "    assert 0 == HumanEval.candidate([1, 3, 5])\n",
    ),
    problem(
        "HumanEval_40_vowel_words",
        "Count how many words of a sentence start and end with a vowel, ignoring case and punctuation.\n"
        '# iex> HumanEval.vowel_words("Anna ate olive oil")\n# 2',
        "vowel_words(sentence)",
        "    sentence\n    |> String.downcase()\n    |> String.split(~r/[^a-z]+/, trim: true)\n"
        "    |> Enum.count(&(String.first(&1) in ~w(a e i o u) and String.last(&1) in ~w(a e i o u)))\n"
        "  end\nend\n",
        '    assert 2 == HumanEval.candidate("Anna ate olive oil")\n'
        '    assert 0 == HumanEval.candidate("")\n',
    ),
    problem(
        "HumanEval_77_digit_product",
        "Return the product of the odd digits of a positive integer, or zero when every digit is even.\n"
        "# iex> HumanEval.digit_product(235)\n# 15",
        "digit_product(n)",
        "    odd = n |> Integer.digits() |> Enum.filter(&(rem(&1, 2) == 1))\n"
        "    if odd == [], do: 0, else: Enum.product(odd)\n  end\nend\n",
        "    assert 15 == HumanEval.candidate(235)\n    assert 0 == HumanEval.candidate(2468)\n",
    ),
]


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return path


def problems_from(tmp_path: Path) -> list[EvalProblem]:
    loaded = list(load_problems([write_jsonl(tmp_path / "humaneval-ex.jsonl", PROBLEMS)]))
    assert all(isinstance(item, EvalProblem) for item in loaded)
    return [item for item in loaded if isinstance(item, EvalProblem)]


def rec(text: str, path: str = "lib/solutions.ex") -> Record:
    return Record("code", "elixir", text, Provenance("github", "someone/leaked", "main", path, "MIT"))


def test_a_copied_solution_is_dropped_with_the_problem_it_matched(tmp_path: Path) -> None:
    decontaminate = Decontaminator(problems_from(tmp_path))
    leaked = (
        "defmodule Solutions do\n"
        "  # Given a list of integers, return the length of the longest run of consecutive even numbers.\n"
        "  def longest_even_run(numbers) do\n" + PROBLEMS[0]["canonical_solution"]
    )
    result = decontaminate(rec(leaked))
    assert isinstance(result, Drop)
    assert (result.filter, result.reason) == ("decontaminate", "eval-overlap")
    assert result.detail.startswith("HumanEval_12_longest_even_run (")
    assert "HumanEval_40" not in result.detail
    assert decontaminate.drops_by_problem == {"HumanEval_12_longest_even_run": 1}


def test_reformatting_does_not_hide_an_overlap(tmp_path: Path) -> None:
    decontaminate = Decontaminator(problems_from(tmp_path))
    # The vowel problem's description, reflowed and re-cased, in a blog-style doc page.
    doc = Record(
        "doc",
        "markdown",
        "Exercise: COUNT how many words of a sentence start\nand end with a vowel,\n"
        "ignoring case and punctuation. Try it in IEx!",
        Provenance("books", "Some Book"),
    )
    result = decontaminate(doc)
    assert isinstance(result, Drop) and "HumanEval_40_vowel_words" in result.detail


def test_the_tests_of_a_problem_are_matched_too(tmp_path: Path) -> None:
    decontaminate = Decontaminator(problems_from(tmp_path))
    copied_tests = (
        "assert 15 == HumanEval.candidate(235)\nassert 0 == HumanEval.candidate(2468)\n  end\nend\n"
    )
    result = decontaminate(rec("defmodule T do\n  test 'x' do\n" + copied_tests, "test/t_test.exs"))
    assert isinstance(result, Drop) and "HumanEval_77_digit_product" in result.detail


def test_ordinary_code_on_the_same_topics_is_kept(tmp_path: Path) -> None:
    decontaminate = Decontaminator(problems_from(tmp_path))
    ordinary = """defmodule Stats do
  @moduledoc "Counting things in lists of integers."

  def evens(numbers), do: Enum.filter(numbers, &(rem(&1, 2) == 0))

  def longest_run(list, predicate) do
    list |> Enum.chunk_by(predicate) |> Enum.map(&length/1) |> Enum.max(fn -> 0 end)
  end

  def product_of_digits(n), do: n |> Integer.digits() |> Enum.product()
end
"""
    assert decontaminate(rec(ordinary)) == rec(ordinary)


def test_boilerplate_shared_by_many_problems_does_not_contaminate(tmp_path: Path) -> None:
    problems = problems_from(tmp_path)
    harness = rec(TEST_HEAD + "    assert true\n  end\nend\n", "test/human_eval_test.exs")
    # Shared by all three problems: template, ignored.
    assert isinstance(Decontaminator(problems)(harness), Record)
    # With a higher bar the same text counts as content of every problem.
    strict = Decontaminator(problems, DecontaminationConfig(boilerplate_min_problems=4))
    result = strict(harness)
    assert isinstance(result, Drop)
    assert all(p["name"] in result.detail for p in PROBLEMS)


def test_n_is_configurable(tmp_path: Path) -> None:
    problems = problems_from(tmp_path)
    phrase = "return the product of the odd digits"  # 7 words from HumanEval_77
    assert isinstance(Decontaminator(problems)(rec(phrase)), Record)
    short_n = Decontaminator(problems, DecontaminationConfig(n=7))
    assert isinstance(short_n(rec(phrase)), Drop)


def test_word_tokens_ignore_punctuation_and_case() -> None:
    assert word_tokens("Enum.map(list, &String.upcase/1)") == ["enum", "map", "list", "string", "upcase", "1"]


def test_loading_skips_bad_lines_and_uses_task_id(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(
                    {"task_id": "HumanEval/0", "prompt": "def f(x):\n", "canonical_solution": "  return x\n"}
                ),
                "{not json",
                json.dumps(["a", "list"]),
                json.dumps({"name": "empty", "prompt": "  ", "tests": ""}),
                "",
                json.dumps({"prompt": "no name here", "tests": "assert f(1) == 1"}),
            ]
        ),
        encoding="utf-8",
    )
    items = list(load_problems([path, tmp_path / "missing.jsonl"]))
    problems = [item for item in items if isinstance(item, EvalProblem)]
    skipped = [item for item in items if isinstance(item, Skipped)]
    assert [p.name for p in problems] == ["HumanEval/0", f"{path}:6"]
    assert problems[0].texts == ("def f(x):\n\n  return x\n",)
    assert problems[1].texts == ("no name here", "assert f(1) == 1")
    assert [s.where for s in skipped] == [
        f"{path}:2",
        f"{path}:3",
        f"{path}:4",
        str(tmp_path / "missing.jsonl"),
    ]
    assert skipped[0].reason.startswith("not JSON")


# -- the bundled evaluation suites (finetune/eval/suites) --------------------------------------------------
REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "finetune" / "eval" / "suites"
# Real ordinary code of this repository, written apart from the suites.
ORDINARY_FILES = sorted([*(REPO / "examples").rglob("*.ex"), *(REPO / "tests" / "idioms" / "corpus").glob("*.ex")])


def bundled() -> list[EvalProblem]:
    items = list(bundled_eval_problems())
    assert not [item for item in items if isinstance(item, Skipped)]
    return [item for item in items if isinstance(item, EvalProblem)]


def core_row(prefix: str) -> dict[str, Any]:
    lines = (SUITES / "elixir_core.jsonl").read_text(encoding="utf-8").splitlines()
    return next(row for row in map(json.loads, lines) if row["name"].startswith(prefix))


def reformat(code: str) -> str:
    """The same code as another formatter or a copy-paste might leave it: re-indented, lines joined."""
    return "\n".join("    " + " ".join(line.split()) for line in code.splitlines() if line.strip())


def test_the_bundled_suites_are_problems() -> None:
    problems = bundled()
    core = [p for p in problems if p.suite == "elixir_core"]
    fim = [p for p in problems if p.suite == "fim"]
    assert len(core) == 72 and len(problems) == 72 + 6
    assert sorted(p.name for p in fim) == sorted(f"fim/{path.name}" for path in (SUITES / "fim").glob("*.ex"))
    row = core_row("core_013_")
    (match_route,) = [p for p in core if p.name == f"elixir_core/{row['name']}"]
    # prompt + canonical solution, prompt + wrong solution, tests
    assert match_route.texts == (
        row["prompt"] + "\n" + row["canonical_solution"],
        row["prompt"] + "\n" + row["wrong_solution"],
        row["tests"],
    )
    throttle = next(p for p in fim if p.name == "fim/throttle_bucket.ex")
    assert throttle.texts == ((SUITES / "fim" / "throttle_bucket.ex").read_text(encoding="utf-8"),)


def test_a_bundled_canonical_solution_is_dropped() -> None:
    row = core_row("core_013_")
    leaked = (
        "defmodule MyApp.Router do\n  def match_route(pattern, path) do\n"
        + reformat(row["canonical_solution"])
    )
    result = Decontaminator(bundled())(rec(leaked, "lib/my_app/router.ex"))
    assert isinstance(result, Drop) and result.detail.startswith(f"elixir_core/{row['name']} (")


def test_a_bundled_wrong_solution_is_eval_material_too() -> None:
    row = core_row("core_047_")  # its wrong solution shares no 13-gram with prompt + canonical solution
    leaked = rec("defmodule Forms do\n  def validate_all(items, validator) do\n" + reformat(row["wrong_solution"]))
    without_wrong = {key: value for key, value in row.items() if key != "wrong_solution"}
    assert isinstance(Decontaminator([problem_from_json(without_wrong, "x")])(leaked), Record)
    result = Decontaminator(bundled())(leaked)
    assert isinstance(result, Drop) and f"elixir_core/{row['name']}" in result.detail


def test_a_fim_file_or_a_large_part_of_it_is_dropped() -> None:
    source = (SUITES / "fim" / "throttle_bucket.ex").read_text(encoding="utf-8")
    renamed = reformat(source.replace("Throttle.Bucket", "RateLimit.Bucket"))
    decontaminate = Decontaminator(bundled())
    result = decontaminate(rec(renamed, "lib/rate_limit/bucket.ex"))
    assert isinstance(result, Drop) and result.detail.startswith("fim/throttle_bucket.ex (")
    callbacks = source[source.index("## Server callbacks") :]
    assert isinstance(decontaminate(rec("defmodule Copy do\n" + callbacks)), Drop)


def test_ordinary_code_is_kept_with_the_bundled_suites() -> None:
    assert len(ORDINARY_FILES) >= 8
    decontaminate = Decontaminator([*(problem_from_json(row, row["name"]) for row in PROBLEMS), *bundled()])
    for path in ORDINARY_FILES:
        ordinary = rec(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
        assert decontaminate(ordinary) == ordinary, path
    # The test problems' shared harness is still template with the bundled problems added, and an ordinary
    # ExUnit module that opens like the suite's tests matches nothing.
    harness = rec(TEST_HEAD + "    assert Cart.total([]) == 0\n  end\nend\n", "test/cart_test.exs")
    assert decontaminate(harness) == harness
    exunit = "ExUnit.start()\ndefmodule CartTest do\n  use ExUnit.Case, async: true\n  test 'total' do\n"
    assert isinstance(decontaminate(rec(exunit + "    assert 3 == Cart.total([1, 2])\n  end\nend\n")), Record)


def test_a_shared_idiom_does_not_make_a_fim_file_match() -> None:
    # rate_limiter.ex starts its GenServer as throttle_bucket.ex does (`Keyword.pop(opts, :name, …)`):
    # a run of shared 13-grams that any-match would count as contamination.
    rate_limiter = rec((REPO / "tests" / "idioms" / "corpus" / "rate_limiter.ex").read_text(encoding="utf-8"))
    any_match = Decontaminator([replace(p, min_share=0.0) for p in bundled()])
    assert isinstance(any_match(rate_limiter), Drop)
    assert Decontaminator(bundled())(rate_limiter) == rate_limiter


def test_the_build_option_is_fingerprinted(tmp_path: Path) -> None:
    options = BuildOptions(raw=tmp_path / "raw", out=tmp_path / "out")
    assert options.bundled_suites
    assert options.fingerprint() != replace(options, bundled_suites=False).fingerprint()
    assert options.fingerprint() == BuildOptions(raw=tmp_path / "elsewhere", out=tmp_path / "o").fingerprint()


def test_the_build_drops_bundled_eval_material_by_default_and_keeps_it_when_off(tmp_path: Path) -> None:
    row = core_row("core_013_")
    fim_file = (SUITES / "fim" / "docs_toc.ex").read_text(encoding="utf-8")
    ordinary = sorted((REPO / "examples").rglob("*.ex"))
    records = [
        rec("defmodule MyApp.Router do\n  def match_route(pattern, path) do\n" + reformat(row["canonical_solution"]),
            "lib/router.ex"),
        rec(reformat(fim_file), "lib/toc.ex"),
        *(rec(path.read_text(encoding="utf-8"), f"lib/{path.name}") for path in ordinary),
    ]
    with CollectionWriter(tmp_path / "raw", "local") as writer:
        writer.add_all(records)

    def build(**options: bool) -> dict:
        out = tmp_path / ("on" if options.get("bundled_suites", True) else "off")
        build_datasets(BuildOptions(tmp_path / "raw", out, tokenizer_report=False, **options))
        return json.loads((out / "card.json").read_text(encoding="utf-8"))

    card = build()
    assert card["options"]["bundled_suites"] is True
    assert card["drops"]["decontaminate"] == {"eval-overlap": 2}
    assert card["contamination_by_suite"] == {"elixir_core": 1, "fim": 1}
    assert card["contamination"] == {f"elixir_core/{row['name']}": 1, "fim/docs_toc.ex": 1}
    assert card["records_kept"] == len(ordinary)
    readme = (tmp_path / "on" / "README.md").read_text(encoding="utf-8")
    assert "evaluation suites (records dropped): elixir_core 1, fim 1." in readme

    off = build(bundled_suites=False)
    assert off["options"]["bundled_suites"] is False
    assert "decontaminate" not in off["drops"] and off["contamination_by_suite"] == {}
    assert off["records_kept"] == len(records)
