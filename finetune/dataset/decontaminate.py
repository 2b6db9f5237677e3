"""Decontamination: drop training records that share a long n-gram with any evaluation problem.

Method (GPT-3 / StarCoder style): both sides are reduced to lower-cased word tokens (identifiers and
numbers; punctuation and whitespace carry no signal and differ between formatters), and a record is
contaminated when it contains any run of `n` consecutive tokens (13 by default) that also occurs in a
problem's text. A problem's texts are its prompt followed by its canonical solution (one program, so runs
may cross from one into the other), its prompt followed by its wrong solution when it has one (a
suite's negative control, eval material too) and, separately, its tests.

Evaluation sets share boilerplate — every MultiPL-E Elixir problem opens with the same `defmodule …` and
its tests with the same ExUnit set-up — and that boilerplate also occurs in ordinary code. An n-gram
found in `boilerplate_min_problems` or more distinct problems is therefore template, not content, and is
ignored. A problem text shorter than `n` tokens cannot be detected this way.

A whole source file as a problem (the bundled FIM files) is realistic code, and realistic code holds
idioms that thousands of ordinary files share (`def start_link(opts)` with `{name, opts} =
Keyword.pop(opts, :name, __MODULE__)` and `GenServer.start_link(…)` is 18 word tokens). One shared n-gram
is no evidence there, so such a problem sets `min_share`: a record must hold that fraction of the
problem's distinct n-grams.

Problems come from MultiPL-E-format JSONL (`name` or `task_id`; `prompt`; `tests`; optionally
`canonical_solution`, `wrong_solution`), from the project's bundled suites (`bundled_eval_problems`: the
`finetune eval` problems and the FIM source files, each file one problem), or directly as `EvalProblem`s.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from finetune.dataset.clean import Drop, where_of
from finetune.eval.fim_cases import FIM_CASES_FILE, FIM_SOURCES_DIR, SUITES_DIR
from finetune.records import Record, Skipped

_WORD = re.compile(r"[A-Za-z0-9_]+")

NGram = tuple[str, ...]


@dataclass(frozen=True)
class EvalProblem:
    name: str
    texts: tuple[str, ...]  # each searched for n-grams on its own
    suite: str = ""  # where it comes from (a file, or a bundled suite's name), for the card's counts
    min_share: float = 0.0  # of its distinct n-grams a record must hold; 0: any one


def word_tokens(text: str) -> list[str]:
    return [token.lower() for token in _WORD.findall(text)]


def ngrams(tokens: list[str], n: int) -> Iterator[NGram]:
    for start in range(len(tokens) - n + 1):
        yield tuple(tokens[start : start + n])


def problem_from_json(data: dict[str, object], fallback_name: str, suite: str = "") -> EvalProblem:
    """An EvalProblem from one MultiPL-E / HumanEval-style JSON object."""
    name = str(data.get("name") or data.get("task_id") or fallback_name)

    def program(solution: str) -> str:
        return "\n".join(str(data[key]) for key in ("prompt", solution) if data.get(key))

    wrong = program("wrong_solution") if data.get("wrong_solution") else ""
    texts = (program("canonical_solution"), wrong, str(data.get("tests") or ""))
    return EvalProblem(name, tuple(text for text in texts if text.strip()), suite)


# A tenth of a FIM file is 35–47 of its distinct 13-grams, about five lines of its own code. The GenServer
# `start_link` idiom with its `@spec` and `## Client API` heading, which ordinary code shares with
# `throttle_bucket.ex`, is 13.
WHOLE_FILE_MIN_SHARE = 0.1


def bundled_suite_files() -> list[Path]:
    """The files of the bundled evaluation suites: every problem JSONL in the suites folder and the FIM
    sources (the FIM cases file is cut from those, so it adds nothing)."""
    problem_files = (path for path in SUITES_DIR.glob("*.jsonl") if path != FIM_CASES_FILE)
    return sorted(problem_files) + sorted(FIM_SOURCES_DIR.glob("*.ex"))


def bundled_eval_problems() -> Iterator[EvalProblem | Skipped]:
    """The bundled suites as problems, named `<suite>/<problem>` (suite: the JSONL's stem, or `fim`)."""
    for path in bundled_suite_files():
        if path.suffix == ".jsonl":
            for item in load_problems([path]):
                if isinstance(item, EvalProblem):
                    item = replace(item, name=f"{path.stem}/{item.name}", suite=path.stem)
                yield item
            continue
        suite = FIM_SOURCES_DIR.name
        try:
            text = path.read_text(encoding="utf-8")
            yield EvalProblem(f"{suite}/{path.name}", (text,), suite, WHOLE_FILE_MIN_SHARE)
        except (OSError, UnicodeDecodeError) as error:
            yield Skipped(str(path), f"cannot read: {error}")


def load_problems(paths: Iterable[Path]) -> Iterator[EvalProblem | Skipped]:
    """Problems from JSONL files; a line that is not a JSON object with some text is Skipped, not fatal."""
    for path in paths:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            yield Skipped(str(path), f"cannot read: {error}")
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as error:
                yield Skipped(where, f"not JSON: {error.msg}")
                continue
            if not isinstance(data, dict):
                yield Skipped(where, "not a JSON object")
                continue
            problem = problem_from_json(data, fallback_name=where, suite=str(path))
            if not problem.texts:
                yield Skipped(where, "no prompt, canonical_solution or tests")
                continue
            yield problem


@dataclass(frozen=True)
class DecontaminationConfig:
    n: int = 13
    # An n-gram shared by this many distinct problems is evaluation boilerplate and is not matched.
    boilerplate_min_problems: int = 3


class Decontaminator:
    """An index of the problems' n-grams; call it on records to keep them or drop them with the match."""

    def __init__(
        self, problems: Iterable[EvalProblem], config: DecontaminationConfig = DecontaminationConfig()
    ):
        self.config = config
        owners: dict[NGram, set[str]] = defaultdict(set)
        shares: dict[str, float] = {}
        self.suites: dict[str, str] = {}  # problem → suite
        for problem in problems:
            shares[problem.name] = problem.min_share
            self.suites[problem.name] = problem.suite
            for text in problem.texts:
                for gram in ngrams(word_tokens(text), config.n):
                    owners[gram].add(problem.name)
        self.index: dict[NGram, frozenset[str]] = {
            gram: frozenset(names)
            for gram, names in owners.items()
            if len(names) < config.boilerplate_min_problems
        }
        sizes: dict[str, int] = defaultdict(int)
        for names in self.index.values():
            for name in names:
                sizes[name] += 1
        # Distinct n-grams a record must share with each problem to count as a match.
        self.required = {name: max(1, math.ceil(share * sizes[name])) for name, share in shares.items()}
        # Most positions of a record start no indexed n-gram; checking the first token first skips them.
        self._first_tokens = frozenset(gram[0] for gram in self.index)
        self.drops_by_problem: dict[str, int] = defaultdict(int)

    def matches(self, text: str) -> dict[str, int]:
        """Problem name → number of its distinct n-grams found in `text`, for the problems matched."""
        tokens = word_tokens(text)
        n = self.config.n
        found: dict[str, int] = defaultdict(int)
        seen: set[NGram] = set()
        for start in range(len(tokens) - n + 1):
            if tokens[start] not in self._first_tokens:
                continue
            gram = tuple(tokens[start : start + n])
            names = self.index.get(gram)
            if names and gram not in seen:
                seen.add(gram)
                for name in names:
                    found[name] += 1
        return {name: count for name, count in found.items() if count >= self.required[name]}

    def __call__(self, record: Record) -> Record | Drop:
        found = self.matches(record.text)
        return self.drop(record, found) if found else record

    def drop(self, record: Record, found: dict[str, int]) -> Drop:
        """The Drop for a record whose text matched `found` (from `matches`), counted per problem."""
        ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
        for name, _ in ranked:
            self.drops_by_problem[name] += 1
        detail = ", ".join(f"{name} ({count} {self.config.n}-grams)" for name, count in ranked)
        return Drop("decontaminate", "eval-overlap", where_of(record), detail)
