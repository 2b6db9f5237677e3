"""Decontamination: drop training records that share a long n-gram with any evaluation problem.

Method (GPT-3 / StarCoder style): both sides are reduced to lower-cased word tokens (identifiers and
numbers; punctuation and whitespace carry no signal and differ between formatters), and a record is
contaminated when it contains any run of `n` consecutive tokens (13 by default) that also occurs in a
problem's text. A problem's texts are its prompt followed by its canonical solution (one program, so runs
may cross from one into the other) and, separately, its tests.

Evaluation sets share boilerplate — every MultiPL-E Elixir problem opens with the same `defmodule …` and
its tests with the same ExUnit set-up — and that boilerplate also occurs in ordinary code. An n-gram
found in `boilerplate_min_problems` or more distinct problems is therefore template, not content, and is
ignored. A problem text shorter than `n` tokens cannot be detected this way.

Problems come from MultiPL-E-format JSONL (`name` or `task_id`; `prompt`; `tests`; optionally
`canonical_solution`), or directly as `EvalProblem`s.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from finetune.dataset.clean import Drop, where_of
from finetune.records import Record, Skipped

_WORD = re.compile(r"[A-Za-z0-9_]+")

NGram = tuple[str, ...]


@dataclass(frozen=True)
class EvalProblem:
    name: str
    texts: tuple[str, ...]  # each searched for n-grams on its own


def word_tokens(text: str) -> list[str]:
    return [token.lower() for token in _WORD.findall(text)]


def ngrams(tokens: list[str], n: int) -> Iterator[NGram]:
    for start in range(len(tokens) - n + 1):
        yield tuple(tokens[start : start + n])


def problem_from_json(data: dict[str, object], fallback_name: str) -> EvalProblem:
    """An EvalProblem from one MultiPL-E / HumanEval-style JSON object."""
    name = str(data.get("name") or data.get("task_id") or fallback_name)
    program = "\n".join(str(data[key]) for key in ("prompt", "canonical_solution") if data.get(key))
    texts = tuple(text for text in (program, str(data.get("tests") or "")) if text.strip())
    return EvalProblem(name, texts)


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
            problem = problem_from_json(data, fallback_name=where)
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
        for problem in problems:
            for text in problem.texts:
                for gram in ngrams(word_tokens(text), config.n):
                    owners[gram].add(problem.name)
        self.index: dict[NGram, frozenset[str]] = {
            gram: frozenset(names)
            for gram, names in owners.items()
            if len(names) < config.boilerplate_min_problems
        }
        # Most positions of a record start no indexed n-gram; checking the first token first skips them.
        self._first_tokens = frozenset(gram[0] for gram in self.index)
        self.drops_by_problem: dict[str, int] = defaultdict(int)

    def matches(self, text: str) -> dict[str, int]:
        """Problem name → number of its n-grams found in `text`."""
        tokens = word_tokens(text)
        n = self.config.n
        found: dict[str, int] = defaultdict(int)
        for start in range(len(tokens) - n + 1):
            if tokens[start] not in self._first_tokens:
                continue
            names = self.index.get(tuple(tokens[start : start + n]))
            if names:
                for name in names:
                    found[name] += 1
        return dict(found)

    def __call__(self, record: Record) -> Record | Drop:
        found = self.matches(record.text)
        if not found:
            return record
        ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
        for name, _ in ranked:
            self.drops_by_problem[name] += 1
        detail = ", ".join(f"{name} ({count} {self.config.n}-grams)" for name, count in ranked)
        return Drop("decontaminate", "eval-overlap", where_of(record), detail)
