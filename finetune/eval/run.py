"""`finetune eval`: generate (or take) completions, score them raw and post-processed, write the report.

`DIR/results.json` holds every number; `DIR/report.md` the summary table. Per completion, besides the
execution status: the static Elixir metrics of the module the completion finishes (prompt + completion).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from finetune.eval.generate import GenerationSettings, ModelChoice, generate_samples, open_backend
from finetune.eval.metrics import static_metrics
from finetune.eval.problems import Problem, load_completions, load_problems
from finetune.eval.sandbox import Limits
from finetune.eval.score import score_completions

SUITES = Path(__file__).resolve().parent / "suites"
DEFAULT_PROBLEMS = SUITES / "elixir_core.jsonl"
MODES = ("raw", "processed")
RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"


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


def load_all(paths: Sequence[Path]) -> list[Problem]:
    return [problem for path in paths for problem in load_problems(path)]


def mean_metrics(problems: Sequence[Problem], completions: dict[str, list[str]]) -> dict[str, float]:
    """Static metrics of each completed module (prompt + completion), averaged over completions."""
    prompts = {problem.name: problem.prompt for problem in problems}
    rows = [static_metrics(prompts[name] + text).as_dict() for name, texts in completions.items() for text in texts]
    if not rows:
        return {}
    return {key: round(statistics.fmean(float(row[key]) for row in rows), 4) for key in rows[0]}


def evaluate(options: EvalOptions, choice: ModelChoice | None, say: Callable[[str], None] = print) -> dict[str, Any]:
    every = load_all(options.problems)
    problems = every[: options.limit] if options.limit else every
    started = time.perf_counter()
    per_mode: dict[str, dict[str, list[str]]]
    generation: dict[str, Any] = {}
    if options.completions is not None:
        given = load_completions(options.completions)
        # Completions for problems that --limit left out are skipped; unknown names still reach the
        # scorer, which names them as errors.
        left_out = {problem.name for problem in every[len(problems) :]}
        per_mode = {"given": {name: texts for name, texts in given.items() if name not in left_out}}
        label = str(options.completions)
    else:
        assert choice is not None
        backend = open_backend(choice)
        label = choice.label()
        per_mode = {mode: {} for mode in MODES}
        tokens, seconds = 0, 0.0
        try:
            for index, problem in enumerate(problems, start=1):
                samples = generate_samples(backend, problem.name, problem.prompt, problem.stop_tokens,
                                           options.generation).samples
                per_mode["raw"][problem.name] = [s.raw for s in samples]
                per_mode["processed"][problem.name] = [s.processed for s in samples]
                tokens += sum(s.generated_tokens for s in samples)
                seconds += sum(s.seconds for s in samples)
                say(f"[{index}/{len(problems)}] {problem.name}")
        finally:
            backend.close()
        generation = {"settings": asdict(options.generation), "generated_tokens": tokens,
                      "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 2) if seconds else None}
    results: dict[str, Any] = {
        "model": label,
        "problems_files": [str(path) for path in options.problems],
        "problems": len(problems),
        "ks": list(options.ks),
        "generation": generation,
        "modes": {},
    }
    for mode, completions in per_mode.items():
        say(f"scoring {mode} completions")
        report = score_completions(problems, completions, options.limits, options.ks, options.workers)
        report["metrics"] = mean_metrics(problems, completions)
        report["by_category"] = by_category(problems, report)
        results["modes"][mode] = report
    results["seconds"] = round(time.perf_counter() - started, 1)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / RESULTS_FILE).write_text(json.dumps(results, indent=2), encoding="utf-8")
    (options.out / REPORT_FILE).write_text(report_markdown(results), encoding="utf-8")
    return results


def by_category(problems: Sequence[Problem], report: dict[str, Any]) -> dict[str, float]:
    """pass@1 per problem category (problems without a category: "uncategorised")."""
    groups: dict[str, list[float]] = {}
    for problem in problems:
        entry = report["problems"].get(problem.name)
        if entry is not None and entry["n"]:
            groups.setdefault(problem.category or "uncategorised", []).append(entry["c"] / entry["n"])
    return {category: round(statistics.fmean(values), 4) for category, values in sorted(groups.items())}


def report_markdown(results: dict[str, Any]) -> str:
    modes = results["modes"]
    any_mode = next(iter(modes.values()))
    lines = [f"# Evaluation: {results['model']}", "",
             f"{results['problems']} problems from {', '.join(results['problems_files'])}; "
             f"Elixir {any_mode['toolchain'].get('elixir', '?')} / OTP {any_mode['toolchain'].get('otp', '?')}; "
             f"{any_mode['machine'].get('cpus')} CPUs.", ""]
    ks = [str(k) for k in results["ks"]]
    metric_names = ("parses", "idiom_per_100_lines", "pipes", "pattern_matches")
    lines.append("| mode | " + " | ".join(f"pass@{k}" for k in ks) + " | " + " | ".join(metric_names) + " | statuses |")
    lines.append("|---" * (2 + len(ks) + len(metric_names)) + "|")
    for mode, report in modes.items():
        passes = [report["pass@k"].get(k) for k in ks]
        shown = ["–" if value is None else f"{value:.3f}" for value in passes]
        metrics = [f"{report['metrics'].get(name, 0):.3f}" for name in metric_names]
        statuses = ", ".join(f"{name} {count}" for name, count in report["status_counts"].items() if count)
        lines.append(f"| {mode} | " + " | ".join(shown + metrics) + f" | {statuses} |")
    lines += ["", "pass@1 by category:", "", "| category | " + " | ".join(modes) + " |",
              "|---" * (1 + len(modes)) + "|"]
    categories = sorted({c for report in modes.values() for c in report["by_category"]})
    for category in categories:
        cells = [f"{modes[mode]['by_category'].get(category, 0):.3f}" for mode in modes]
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    if results["generation"]:
        g = results["generation"]
        lines += ["", f"Generation: {g['settings']}, {g['generated_tokens']} tokens in {g['seconds']} s."]
    return "\n".join(lines) + "\n"
