"""The side-by-side report of one or more evaluated models: `report.md` and PNG plots.

Input is `results.json` (schema 2, written by `finetune.eval.run`): shared facts (problems, k values,
toolchain, machine) and one entry per model, each with its scored modes (raw / processed, or given), and
optionally its FIM scores and perplexities. `finetune eval --compare DIR…` merges earlier runs' files with
`merge_results` and renders them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SCHEMA = 2
RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"
METRIC_COLUMNS = ("parses", "compiles", "formatted", "idiom_per_100_lines", "pipes", "pattern_matches")
FIM_COLUMNS = (("exact_match", "exact match"), ("edit_similarity", "edit sim."), ("chrf", "chrF"))


class ReportError(ValueError):
    pass


def _cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _rows(results: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(model label, mode, mode report) for every scored mode of every model, in order."""
    return [(model["label"], mode, report) for model in results["models"] for mode, report in model["modes"].items()]


def load_results(directory: Path) -> dict[str, Any]:
    path = directory / RESULTS_FILE
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ReportError(f"{path}: cannot read results ({error})") from error
    if not isinstance(results, dict) or results.get("schema") != SCHEMA or not isinstance(results.get("models"), list):
        raise ReportError(f"{path}: not a `finetune eval` results file of schema {SCHEMA}")
    return results


def _problem_names(results: dict[str, Any]) -> frozenset[str]:
    return frozenset(name for _, _, report in _rows(results) for name in report["problems"])


def merge_results(runs: Sequence[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """One results dict with every model of `runs` ((directory, results) pairs). Runs over different
    problem sets still merge, but the report says so: their pass rates are not comparable."""
    if not runs:
        raise ReportError("--compare needs at least one results folder")
    first = runs[0][1]
    models, labels = [], set()
    for directory, results in runs:
        for model in results["models"]:
            label = model["label"]
            # The same model in two runs (e.g. two dates) stays apart by its folder.
            shown = label if label not in labels else f"{label} ({directory.name})"
            labels.add(shown)
            models.append({**model, "label": shown, "source": str(directory)})
    problem_sets = {_problem_names(results) for _, results in runs}
    return {
        **{key: first[key] for key in ("schema", "problems_files", "problems", "ks", "toolchain", "machine")},
        "models": models,
        "compared": [str(directory) for directory, _ in runs],
        "same_problems": len(problem_sets) == 1,
    }


def report_markdown(results: dict[str, Any], plots: Sequence[str] = ()) -> str:
    toolchain, machine = results["toolchain"], results["machine"]
    labels = [model["label"] for model in results["models"]]
    lines = [f"# Evaluation: {' vs '.join(labels)}", "",
             f"{results['problems']} problems from {', '.join(results['problems_files'])}; "
             f"Elixir {toolchain.get('elixir', '?')} / OTP {toolchain.get('otp', '?')}; "
             f"{machine.get('cpus')} CPUs ({machine.get('platform', '?')}).", ""]
    if not results.get("same_problems", True):
        lines += ["**The compared runs used different problem sets: their pass rates are not comparable.**", ""]
    ks = [str(k) for k in results["ks"]]
    header = ["model", "mode", *(f"pass@{k}" for k in ks), *METRIC_COLUMNS, "statuses"]
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for label, mode, report in _rows(results):
        passes = [_cell(report["pass@k"].get(k)) for k in ks]
        metrics = [_cell(report["metrics"].get(name)) for name in METRIC_COLUMNS]
        statuses = ", ".join(f"{name} {count}" for name, count in report["status_counts"].items() if count)
        lines.append(f"| {label} | {mode} | " + " | ".join(passes + metrics) + f" | {statuses} |")
    lines += ["", "pass@1 by category:", ""]
    columns = [f"{label} ({mode})" for label, mode, _ in _rows(results)]
    lines += ["| category | " + " | ".join(columns) + " |", "|---" * (1 + len(columns)) + "|"]
    categories = sorted({c for _, _, report in _rows(results) for c in report["by_category"]})
    for category in categories:
        cells = [_cell(report["by_category"].get(category)) for _, _, report in _rows(results)]
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    lines += _fim_section(results) + _forgetting_section(results) + _generation_section(results)
    if plots:
        lines += ["", *(f"![{Path(plot).stem}]({Path(plot).name})" for plot in plots)]
    return "\n".join(lines) + "\n"


def _fim_section(results: dict[str, Any]) -> list[str]:
    scored = [(model["label"], model["fim"]) for model in results["models"] if model.get("fim")]
    if not scored:
        return []
    lines = ["", "FIM / next-line cases (exact match and edit similarity 0–1, chrF 0–100):", "",
             "| model | mode | kind | cases | " + " | ".join(title for _, title in FIM_COLUMNS) + " |",
             "|---" * (4 + len(FIM_COLUMNS)) + "|"]
    for label, fim in scored:
        for mode, scores in fim["modes"].items():
            for kind, numbers in [("all", scores["overall"]), *scores["by_kind"].items()]:
                cells = [_cell(numbers.get(key), 1 if key == "chrf" else 3) for key, _ in FIM_COLUMNS]
                lines.append(f"| {label} | {mode} | {kind} | {numbers.get('count', 0)} | " + " | ".join(cells) + " |")
    return lines


def _forgetting_section(results: dict[str, Any]) -> list[str]:
    from finetune.eval.forgetting import forgetting_table  # it loads torch; --compare without it needs none

    scored = {model["label"]: model["forgetting"] for model in results["models"] if model.get("forgetting")}
    if not scored:
        return []
    baseline = next(iter(scored))
    sets = list(dict.fromkeys(name for forgetting in scored.values() for name in forgetting))
    cells = {(row["model"], row["set"]): f"{row['perplexity']:.3f}" + ("" if row["ratio"] is None else f" ({row['ratio']:.3f}×)")
             for row in forgetting_table(scored, baseline)}
    lines = ["", f"Perplexity (lower is better; × = ratio to {baseline}):", "",
             "| model | " + " | ".join(sets) + " |", "|---" * (1 + len(sets)) + "|"]
    lines += [f"| {label} | " + " | ".join(cells.get((label, name), "–") for name in sets) + " |" for label in scored]
    return lines


def _generation_section(results: dict[str, Any]) -> list[str]:
    lines = []
    for model in results["models"]:
        generation = model.get("generation")
        if generation:
            lines.append(f"- {model['label']}: {generation['generated_tokens']} tokens in {generation['seconds']} s "
                         f"({generation['tokens_per_s']} tokens/s), settings {generation['settings']}")
    return ["", "Generation:", "", *lines] if lines else []


# -- plots --------------------------------------------------------------------------------------------------


def save_plots(results: dict[str, Any], out: Path) -> list[str]:
    """pass@k, metric bars and pass@1 per category as PNGs in `out`; the files' names."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    rows = _rows(results)
    names = [f"{label}\n{mode}" for label, mode, _ in rows]
    written = []

    def bars(ax: Any, groups: Sequence[str], series: dict[str, list[float]], ylabel: str) -> None:
        width = 0.8 / max(len(series), 1)
        for index, (name, values) in enumerate(series.items()):
            ax.bar([g + index * width for g in range(len(groups))], values, width, label=name)
        ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)

    def save(figure: Any, name: str) -> None:
        figure.tight_layout()
        figure.savefig(out / name, dpi=100)
        plt.close(figure)
        written.append(name)

    ks = [str(k) for k in results["ks"]]
    figure, ax = plt.subplots(figsize=(max(5, 1.4 * len(rows)), 3.5))
    bars(ax, names, {f"pass@{k}": [report["pass@k"].get(k) or 0.0 for _, _, report in rows] for k in ks}, "pass rate")
    save(figure, "pass_at_k.png")

    shares = ("parses", "compiles", "formatted")
    figure, (left, right) = plt.subplots(1, 2, figsize=(max(8, 2.4 * len(rows)), 3.5))
    bars(left, names, {m: [report["metrics"].get(m) or 0.0 for _, _, report in rows] for m in shares}, "share")
    counts = ("idiom_per_100_lines", "pipes", "pattern_matches")
    bars(right, names, {m: [report["metrics"].get(m) or 0.0 for _, _, report in rows] for m in counts}, "per completion")
    save(figure, "metrics.png")

    categories = sorted({c for _, _, report in rows for c in report["by_category"]})
    if categories:
        figure, ax = plt.subplots(figsize=(max(8, 1.1 * len(categories)), 3.8))
        series = {name.replace("\n", " "): [report["by_category"].get(c, 0.0) for c in categories]
                  for name, (_, _, report) in zip(names, rows, strict=True)}
        bars(ax, [c.replace("_", "\n") for c in categories], series, "pass@1")
        save(figure, "by_category.png")
    return written


def write_report(results: dict[str, Any], out: Path, plots: bool = True) -> list[str]:
    """results.json, the PNGs and report.md in `out`; the plot file names."""
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_FILE).write_text(json.dumps(results, indent=2), encoding="utf-8")
    written = save_plots(results, out) if plots else []
    (out / REPORT_FILE).write_text(report_markdown(results, written), encoding="utf-8")
    return written
