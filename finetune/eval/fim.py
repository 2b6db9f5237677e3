"""The FIM / next-line set (`suites/fim_cases.jsonl`) through the server's backend, prompt and post-processing.

Each case is a completion request in a document that holds `prefix + suffix` (the file with its middle
missing, as an editor has it while the user is about to type it), with the cursor between them. The prompt
is built by the server's own `build_prompt_input` (prefix/suffix windows, tree-sitter context lines) and
`render_completion_prompt`; generation runs under the server's streaming stop check; the answer is scored
against `expected` two ways:

- **raw**: the model's text as generated (under that stop check), cut for the kind: a `next_line` case
  takes it up to the first newline, a `fim_span` case takes it whole, trimmed;
- **processed**: the server's `postprocess` of that text with the prefix, suffix and parse guard the server
  uses: exactly the ghost text the editor would show.

Metrics (`finetune.eval.metrics`): exact match, edit similarity, chrF (corpus chrF per group, sentence
chrF per case), per mode, per kind and overall. Given completions (`{"name", "completion"}` lines) are
scored as they are, in one mode `given`.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from finetune.eval.fim_cases import FIM_CASES_FILE, KINDS
from finetune.eval.metrics import chrf, edit_similarity, exact_match, sentence_chrf
from finetune.eval.problems import ProblemError, load_completions, load_named
from lsp.backends.base import Backend, GenerationParams
from lsp.completion.assemble import LineTokenCounter, build_prompt_input, parse_guard, postprocess_edges
from lsp.completion.postprocess import ParseGuard, make_stop_check, postprocess
from lsp.config import ContextSettings
from lsp.documents import Document
from lsp.prompt import Prompt, render_completion_prompt

DEFAULT_FIM_CASES = FIM_CASES_FILE
_FIELDS = ("name", "file", "prefix", "suffix", "expected", "kind")


@dataclass(frozen=True)
class FimCase:
    name: str
    file: str  # the source file's name: the path the prompt's header names
    prefix: str
    suffix: str
    expected: str
    kind: str  # next_line | fim_span


@dataclass(frozen=True)
class FimSettings:
    max_tokens: int = 64
    temperature: float = 0.0
    time_budget_ms: int = 0  # 0 = none (the server's 1500 ms would make scores depend on the machine)
    context: ContextSettings = field(default_factory=ContextSettings)


@dataclass(frozen=True)
class FimSample:
    name: str
    raw: str
    processed: str
    reason: str  # postprocess's reason: ok, single-line, end-of-block, repeats-suffix, ...
    generated_tokens: int
    seconds: float
    stop_reason: str


# -- loading ----------------------------------------------------------------------------------------------


def fim_case_from_json(data: dict[str, Any], where: str) -> FimCase:
    """One case from a decoded line; `where` ("file:line") prefixes every error."""
    for key in _FIELDS:
        if key not in data:
            raise ProblemError(f"{where}: missing required field '{key}'")
        if not isinstance(data[key], str):
            raise ProblemError(f"{where}: field '{key}' must be a string, got {type(data[key]).__name__}")
    if not data["name"].strip():
        raise ProblemError(f"{where}: field 'name' is empty")
    if data["kind"] not in KINDS:
        raise ProblemError(f"{where}: field 'kind' is {data['kind']!r}; expected one of {', '.join(KINDS)}")
    if not data["expected"].strip():
        raise ProblemError(f"{where}: field 'expected' is empty")
    return FimCase(**{key: data[key] for key in _FIELDS})


def load_fim_cases(path: Path = DEFAULT_FIM_CASES) -> list[FimCase]:
    """Cases in file order; ProblemError (message `file:line: ...`) for a malformed line or a duplicate name."""
    return load_named(path, fim_case_from_json)


def load_fim_completions(path: Path) -> dict[str, str]:
    """`{"name", "completion"}` lines (the problems' completion format), one completion per case."""
    completions: dict[str, str] = {}
    for name, texts in load_completions(path).items():
        if len(texts) != 1:
            raise ProblemError(
                f"{path}: {name!r} has {len(texts)} completions; FIM scoring takes one per case"
            )
        completions[name] = texts[0]
    return completions


# -- generation -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FimRequest:
    """What the server builds for a completion request at the case's cursor."""

    prompt: Prompt
    prefix: str  # what postprocess sees before the cursor
    suffix: str  # and after it
    guard: ParseGuard


def fim_request(case: FimCase, backend: Backend, context: ContextSettings) -> FimRequest:
    """The prompt, post-processing prefix/suffix and parse guard the server's engine uses, for a document
    `prefix + suffix` with the cursor between them (no other documents open: no snippets)."""
    doc = Document(f"file:///fim/{case.file}", case.prefix + case.suffix, reparse_budget_s=None)
    cursor = len(case.prefix.encode("utf-8"))
    prompt_input, windows = build_prompt_input(
        doc, case.file, cursor, context, LineTokenCounter(backend.count_tokens)
    )
    prompt = render_completion_prompt(prompt_input, backend.info().fim)
    prefix, suffix = postprocess_edges(doc, cursor, windows)
    guard = parse_guard(doc, cursor, windows, prefix, suffix)
    return FimRequest(prompt, prefix, suffix, guard)


def raw_answer(text: str, kind: str) -> str:
    """The model's text cut for the kind: one line for `next_line` (indentation kept), trimmed for spans."""
    if kind == "next_line":
        return text.split("\n", 1)[0].rstrip()
    return text.strip()


def generate_fim(
    backend: Backend, case: FimCase, settings: FimSettings, cancel: threading.Event | None = None
) -> FimSample:
    request = fim_request(case, backend, settings.context)
    params = GenerationParams(settings.max_tokens, settings.temperature, settings.time_budget_ms)
    started = time.perf_counter()
    result = backend.generate(
        request.prompt, params, make_stop_check(request.prefix, request.suffix), cancel or threading.Event()
    )
    seconds = time.perf_counter() - started
    processed = postprocess(result.text, request.prefix, request.suffix, guard=request.guard)
    return FimSample(
        name=case.name,
        raw=raw_answer(result.text, case.kind),
        processed=processed.text,
        reason=processed.reason,
        generated_tokens=result.generated_tokens,
        seconds=seconds,
        stop_reason=result.stop_reason,
    )


# -- scoring ----------------------------------------------------------------------------------------------


def _group_scores(expected: Sequence[str], texts: Sequence[str]) -> dict[str, Any]:
    if not expected:
        return {"count": 0, "exact_match": None, "edit_similarity": None, "chrf": None}
    return {
        "count": len(expected),
        "exact_match": round(
            statistics.fmean(exact_match(t, e) for t, e in zip(texts, expected, strict=True)), 4
        ),
        "edit_similarity": round(
            statistics.fmean(edit_similarity(t, e) for t, e in zip(texts, expected, strict=True)), 4
        ),
        "chrf": round(chrf(texts, expected), 2),
    }


def score_texts(
    cases: Sequence[FimCase],
    texts: Mapping[str, Mapping[str, str]],
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Score `texts[mode][case name]` against the cases' `expected`.

    Every mode must cover the same names; a name that is not a case is a ValueError. Cases without a text
    are left out and listed under `missing`. `extra[name]` is merged into that case's row."""
    modes = list(texts)
    known = {case.name for case in cases}
    names = set(texts[modes[0]]) if modes else set()
    for mode in modes:
        unknown = sorted(set(texts[mode]) - known)
        if unknown:
            raise ValueError(f"{mode} completions for unknown cases: {', '.join(unknown)}")
        if set(texts[mode]) != names:
            raise ValueError(f"modes {modes[0]} and {mode} cover different cases")
    scored = [case for case in cases if case.name in names]
    result: dict[str, Any] = {
        "cases": len(scored),
        "missing": [case.name for case in cases if case.name not in names],
        "modes": {},
        "rows": [],
    }
    for mode in modes:
        hyps = [texts[mode][case.name] for case in scored]
        refs = [case.expected for case in scored]
        by_kind = {}
        for kind in KINDS:
            picked = [i for i, case in enumerate(scored) if case.kind == kind]
            if picked:
                by_kind[kind] = _group_scores([refs[i] for i in picked], [hyps[i] for i in picked])
        result["modes"][mode] = {"overall": _group_scores(refs, hyps), "by_kind": by_kind}
    for case in scored:
        row: dict[str, Any] = {"name": case.name, "kind": case.kind, "expected": case.expected}
        row.update({mode: texts[mode][case.name] for mode in modes})
        row["em"] = {mode: exact_match(texts[mode][case.name], case.expected) for mode in modes}
        row["es"] = {mode: round(edit_similarity(texts[mode][case.name], case.expected), 4) for mode in modes}
        row["chrf"] = {mode: round(sentence_chrf(texts[mode][case.name], case.expected), 2) for mode in modes}
        if extra is not None and case.name in extra:
            row.update(extra[case.name])
        result["rows"].append(row)
    return result


def score_fim(cases: Sequence[FimCase], samples: Sequence[FimSample]) -> dict[str, Any]:
    """Modes `raw` and `processed`; rows also carry the sample's tokens, seconds and reasons."""
    texts: dict[str, dict[str, str]] = {"raw": {}, "processed": {}}
    extra: dict[str, dict[str, Any]] = {}
    for sample in samples:
        if sample.name in texts["raw"]:
            raise ValueError(f"two samples for case {sample.name!r}")
        texts["raw"][sample.name] = sample.raw
        texts["processed"][sample.name] = sample.processed
        extra[sample.name] = {
            "reason": sample.reason,
            "generated_tokens": sample.generated_tokens,
            "seconds": round(sample.seconds, 3),
            "stop_reason": sample.stop_reason,
        }
    return score_texts(cases, texts, extra)


def score_fim_completions(cases: Sequence[FimCase], completions: Mapping[str, str]) -> dict[str, Any]:
    """Given completions (no model), scored as they are, in the mode `given`."""
    return score_texts(cases, {"given": completions})


def evaluate_fim(
    backend: Backend, cases: Sequence[FimCase], settings: FimSettings, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Generate every case (in order) and score it; the result is JSON-serialisable."""
    samples = []
    for index, case in enumerate(cases, start=1):
        samples.append(generate_fim(backend, case, settings))
        say(f"[{index}/{len(cases)}] {case.name}")
    tokens = sum(sample.generated_tokens for sample in samples)
    seconds = sum(sample.seconds for sample in samples)
    info = backend.info()
    result = {
        "model": info.model,
        "backend": info.backend,
        "fim_tokens": info.fim is not None,
        "generation": {
            "settings": asdict(settings),
            "generated_tokens": tokens,
            "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 2) if seconds else None,
        },
    }
    result.update(score_fim(cases, samples))
    return result
