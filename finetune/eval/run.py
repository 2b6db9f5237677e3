"""`finetune eval`: generate (or take) completions, score them raw and post-processed, write the report.

Several models (a base, adapters on it, registry versions) run on the same problems and land side by
side. `DIR/results.json` holds every number; `DIR/report.md` the tables and `DIR/*.png` the plots.
Per completion, besides the execution status: the Elixir metrics of the module the completion finishes
(prompt + completion).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from finetune.eval.fim import (
    FimCase,
    FimSettings,
    evaluate_fim,
    load_fim_cases,
    load_fim_completions,
    score_fim_completions,
)
from finetune.eval.fim_cases import FIM_CASES_FILE, SUITES_DIR
from finetune.eval.forgetting import TextSet, perplexities
from finetune.eval.generate import GenerationSettings, ModelChoice, generate_samples, open_backend
from finetune.eval.metrics import static_metrics, tool_metrics
from finetune.eval.problems import Problem, load_completions, load_problems
from finetune.eval.report import SCHEMA, write_report
from finetune.eval.sandbox import Limits, make_runner
from finetune.eval.score import score_completions

DEFAULT_PROBLEMS = SUITES_DIR / "elixir_core.jsonl"
MODES = ("raw", "processed")


@dataclass(frozen=True)
class EvalOptions:
    problems: tuple[Path, ...]
    out: Path
    ks: tuple[int, ...] = (1,)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    limits: Limits = field(default_factory=Limits)
    workers: int | None = None
    limit: int = 0  # the first N problems only (0 = all)
    completions: Path | None = None  # score these instead of generating
    fim_cases: Path | None = FIM_CASES_FILE  # None: no FIM / next-line scoring
    fim: FimSettings = field(default_factory=FimSettings)
    fim_completions: Path | None = None  # with `completions`: given FIM answers to score
    perplexity_sets: tuple[TextSet, ...] = ()  # forgetting: perplexity of each GGUF model on these
    plots: bool = True


def load_all(paths: Sequence[Path]) -> list[Problem]:
    return [problem for path in paths for problem in load_problems(path)]


def completion_metrics(
    problems: Sequence[Problem], completions: dict[str, list[str]], limits: Limits
) -> dict[str, list[dict[str, Any]]]:
    """Per completion, the Elixir metrics of the module it finishes (prompt + completion): the static
    ones, whether it compiles with warnings as errors, and whether `mix format` leaves the completion's
    lines as they are (all completions in a few sandboxed VMs, so the sandbox gets a batch's time and
    output room)."""
    prompts = {problem.name: problem.prompt for problem in problems}
    modules = [(name, prompts[name] + text) for name, texts in completions.items() for text in texts]
    batch_limits = replace(limits, timeout_s=max(limits.timeout_s, 180.0), cpu_s=max(limits.cpu_s, 180),
                           output_chars=max(limits.output_chars, 16384))
    # `formatted` judges the completion's lines only (the line it starts on included): the given
    # skeleton is not `mix format`ted (MultiPL-E's layout), which no completion can change.
    tools = tool_metrics([code.rstrip("\n") + "\n" for _, code in modules], make_runner(batch_limits),
                         generated_from=[prompts[name].count("\n") for name, _ in modules])
    rows: dict[str, list[dict[str, Any]]] = {}
    for (name, code), tool in zip(modules, tools, strict=True):
        rows.setdefault(name, []).append({**static_metrics(code).as_dict(), **asdict(tool)})
    return rows


def mean_metrics(rows: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Each numeric metric (booleans as shares) averaged over all completions."""
    every = [row for per_problem in rows.values() for row in per_problem]
    keys = [key for key, value in every[0].items() if isinstance(value, bool | int | float)] if every else []
    return {key: round(statistics.fmean(float(row[key]) for row in every), 4) for key in keys}


def evaluate(options: EvalOptions, choices: Sequence[ModelChoice], say: Callable[[str], None] = print) -> dict[str, Any]:
    """Every model in `choices` on the same problems (or the given completions), then results.json,
    report.md and the plots in `options.out`."""
    every = load_all(options.problems)
    problems = every[: options.limit] if options.limit else every
    # Read before any generation: a bad cases file is reported at once, and read once for all models.
    cases = load_fim_cases(options.fim_cases) if options.fim_cases is not None else None
    started = time.perf_counter()
    if options.completions is not None:
        given = load_completions(options.completions)
        # Completions for problems that --limit left out are skipped; unknown names still reach the
        # scorer, which names them as errors.
        left_out = {problem.name for problem in every[len(problems) :]}
        per_mode = {"given": {name: texts for name, texts in given.items() if name not in left_out}}
        model = score_model(str(options.completions), per_mode, {}, problems, options, say)
        if options.fim_completions is not None and cases is not None:
            model["fim"] = score_fim_completions(cases, load_fim_completions(options.fim_completions))
        models = [model]
    else:
        models = [evaluate_model(choice, problems, cases, options, say) for choice in choices]
    first = models[0]["modes"][next(iter(models[0]["modes"]))]
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "problems_files": [str(path) for path in options.problems],
        "problems": len(problems),
        "ks": list(options.ks),
        "toolchain": first["toolchain"],
        "machine": first["machine"],
        "models": models,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_report(results, options.out, plots=options.plots)
    return results


def evaluate_model(
    choice: ModelChoice,
    problems: Sequence[Problem],
    cases: Sequence[FimCase] | None,
    options: EvalOptions,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Generate with one model (raw and post-processed) and score both; then the FIM cases, if any."""
    label = choice.label()
    backend = open_backend(choice)
    per_mode: dict[str, dict[str, list[str]]] = {mode: {} for mode in MODES}
    tokens, seconds = 0, 0.0
    try:
        for index, problem in enumerate(problems, start=1):
            samples = generate_samples(backend, problem.name, problem.prompt, problem.stop_tokens,
                                       options.generation).samples
            per_mode["raw"][problem.name] = [s.raw for s in samples]
            per_mode["processed"][problem.name] = [s.processed for s in samples]
            tokens += sum(s.generated_tokens for s in samples)
            seconds += sum(s.seconds for s in samples)
            say(f"{label} [{index}/{len(problems)}] {problem.name}")
        fim = None
        if cases is not None:
            say(f"{label}: FIM / next-line cases")
            fim = evaluate_fim(backend, cases, options.fim, say=lambda _line: None)
    finally:
        backend.close()
    generation = {"settings": asdict(options.generation), "generated_tokens": tokens,
                  "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 2) if seconds else None}
    forgetting = None
    if options.perplexity_sets and choice.endpoint:
        say(f"{label}: no perplexity (an OpenAI-compatible endpoint returns no logits)")
    elif options.perplexity_sets:
        say(f"{label}: perplexity on {', '.join(text_set.name for text_set in options.perplexity_sets)}")
        forgetting = perplexities(choice, options.perplexity_sets)
    return {**score_model(label, per_mode, generation, problems, options, say), "fim": fim, "forgetting": forgetting}


def score_model(
    label: str,
    per_mode: dict[str, dict[str, list[str]]],
    generation: dict[str, Any],
    problems: Sequence[Problem],
    options: EvalOptions,
    say: Callable[[str], None],
) -> dict[str, Any]:
    modes = {}
    for mode, completions in per_mode.items():
        say(f"{label}: scoring {mode} completions")
        report = score_completions(problems, completions, options.limits, options.ks, options.workers)
        rows = completion_metrics(problems, completions, options.limits)
        for name, per_completion in rows.items():
            if name in report["problems"]:
                report["problems"][name]["metrics"] = per_completion
        report["metrics"] = mean_metrics(rows)
        report["by_category"] = by_category(problems, report)
        modes[mode] = report
    return {"label": label, "generation": generation, "modes": modes}


def by_category(problems: Sequence[Problem], report: dict[str, Any]) -> dict[str, float]:
    """pass@1 per problem category (problems without a category: "uncategorised")."""
    groups: dict[str, list[float]] = {}
    for problem in problems:
        entry = report["problems"].get(problem.name)
        if entry is not None and entry["n"]:
            groups.setdefault(problem.category or "uncategorised", []).append(entry["c"] / entry["n"])
    return {category: round(statistics.fmean(values), 4) for category, values in sorted(groups.items())}
