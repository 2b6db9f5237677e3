"""`finetune build`: raw collections → the three stages' datasets and their card.

    records ─┬─ clean → scrub secrets → licence → decontaminate
             │  → stage 1 (causal text) + stage 2 (FIM, instructions)  (parallel, cached per record)
             ├─ exact + near dedupe; a dropped record's samples go too   (one pass, in a stable order)
             ├─ "write the test for" (pairs lib and test files)          (corpus-wide)
             └─ stage 3: the book curriculum, stdlib docs as one more book (in book order)

Per-record work runs in a process pool and is cached under a content address (the record, the options
that affect it, and PIPELINE_VERSION), so an interrupted or repeated build only computes what is new.
The datasets are written to a temporary folder and renamed into place when complete: a failed build never
leaves a half-written dataset. Malformed inputs are skipped and reported in the card, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from finetune.dataset.clean import Drop, clean
from finetune.dataset.curriculum import curriculum, docs_as_book
from finetune.dataset.decontaminate import (
    Decontaminator,
    EvalProblem,
    bundled_eval_problems,
    bundled_suite_files,
    load_problems,
)
from finetune.dataset.dedupe import Deduper, NearDeduper, content_digest
from finetune.dataset.licences import PERMISSIVE, LicencePolicy, filter_licence
from finetune.dataset.secrets import scrub_record
from finetune.dataset.tasks import Stage2Options, stage2_samples
from finetune.dataset.tasks.causal import causal_samples
from finetune.dataset.tasks.tests_for import write_test_samples_for
from finetune.records import Record, Skipped
from finetune.store import collections, read_collection
from lsp.prompt import PROMPT_FORMAT_VERSION

# Bump when a step changes its output: cached per-record results of older versions are then ignored.
PIPELINE_VERSION = "build/7"
SAMPLES_PER_SHARD = 5000
STAGES = (1, 2, 3)


@dataclass(frozen=True)
class BuildOptions:
    raw: Path
    out: Path
    licences: tuple[str, ...] = ()  # empty: the permissive default (see finetune.dataset.licences)
    allow_unknown_licence: bool = False
    eval_problems: tuple[Path, ...] = ()
    bundled_suites: bool = True  # also decontaminate against finetune/eval/suites (see bundled_eval_problems)
    tokenizer: str = ""  # tokenizer.json or GGUF for the report; "" = the embedded model's vocabulary
    workers: int = 1
    cache: Path | None = None
    tokenizer_report: bool = True

    def fingerprint(self) -> str:
        """What changes per-record results (not where they are written)."""
        problems = sorted(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in self.eval_problems)
        suites = bundled_suite_files() if self.bundled_suites else []
        bundled = [hashlib.sha256(p.read_bytes()).hexdigest() for p in suites]
        data = [PIPELINE_VERSION, PROMPT_FORMAT_VERSION, sorted(self.licences), self.allow_unknown_licence,
                problems, self.bundled_suites, bundled]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


@dataclass
class Card:
    """Everything the dataset card reports; `card.json` is this, `card.md` its rendering."""

    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    records_in: int = 0
    drops: dict[str, dict[str, int]] = field(default_factory=dict)  # filter → reason → count
    secrets: dict[str, int] = field(default_factory=dict)
    dedupe: dict[str, int] = field(default_factory=dict)
    contamination: dict[str, int] = field(default_factory=dict)  # problem → records dropped
    contamination_by_suite: dict[str, int] = field(default_factory=dict)  # suite → records dropped
    licences: dict[str, int] = field(default_factory=dict)  # of the records kept
    records_kept: int = 0
    samples: dict[int, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    chars: dict[int, int] = field(default_factory=dict)
    tokens: dict[int, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    tokenizer: dict[str, Any] | None = None
    tokenizer_markdown: str = ""
    cache_hits: int = 0
    seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)


# -- per-record steps (run in workers) ---------------------------------------------------------------------
_worker: dict[str, Any] = {}


def _eval_problems(options: BuildOptions) -> Iterator[EvalProblem | Skipped]:
    yield from load_problems(options.eval_problems)
    if options.bundled_suites:
        yield from bundled_eval_problems()


def _init_worker(options: BuildOptions) -> None:
    problems = [p for p in _eval_problems(options) if not isinstance(p, Skipped)]
    _worker["policy"] = LicencePolicy(
        allowed=frozenset(options.licences) if options.licences else PERMISSIVE,
        allow_unknown=options.allow_unknown_licence,
    )
    _worker["decontaminate"] = Decontaminator(problems) if problems else None
    _worker["fingerprint"] = options.fingerprint()
    _worker["signer"] = NearDeduper()
    _worker["cache"] = options.cache


def _cache_path(phase: str, key: str) -> Path | None:
    cache = _worker.get("cache")
    return None if cache is None else Path(cache) / phase / key[:2] / f"{key}.json"


def _cached(phase: str, record: Record, compute: Any) -> tuple[Any, bool]:
    """`compute()` once per (record, options): the JSON result is kept under a content address."""
    key = hashlib.sha256(
        json.dumps([phase, _worker["fingerprint"], record.to_json()], sort_keys=True).encode()
    ).hexdigest()
    path = _cache_path(phase, key)
    if path is not None and path.exists():
        try:
            return json.loads(path.read_text(encoding="utf-8")), True
        except (OSError, ValueError):
            pass  # a torn cache entry is recomputed
    result = compute()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result), encoding="utf-8")
        tmp.replace(path)
    return result, False


def _filter(record: Record) -> dict[str, Any]:
    """clean → scrub → licence → decontaminate: the kept record (JSON) or the drop, with secret counts."""
    cleaned = clean(record)
    if isinstance(cleaned, Drop):
        return {"drop": asdict(cleaned)}
    record, found = scrub_record(cleaned)
    result: dict[str, Any] = {"secrets": dict(found)}
    licensed = filter_licence(record, _worker["policy"])
    if isinstance(licensed, Drop):
        return {**result, "drop": asdict(licensed)}
    decontaminate: Decontaminator | None = _worker["decontaminate"]
    if decontaminate is not None and (found := decontaminate.matches(licensed.text)):
        matched = {name: decontaminate.suites[name] for name in found}
        return {**result, "drop": asdict(decontaminate.drop(licensed, found)), "eval_matches": matched}
    # The MinHash signature is the costly part of near dedupe; computed here, the serial pass only probes.
    signature = _worker["signer"].signature(licensed.text)
    return {
        **result,
        "record": licensed.to_json(),
        "signature": None if signature is None else signature.tolist(),
        "digest": content_digest(licensed.text).hex(),
    }


def _samples(record: Record) -> list[dict[str, Any]]:
    if record.kind == "book":
        return []  # books become the stage-3 curriculum, in book order
    samples = list(causal_samples(record))
    if record.kind == "code" and record.language == "elixir":
        samples.extend(stage2_samples(record, Stage2Options()))
    return samples


# A sample as it travels back from a worker: (stage, task, characters, its JSON line). Serialising in the
# worker keeps the main process, which only writes lines, from becoming the bottleneck.
SampleLine = tuple[int, str, int, str]


def sample_line(sample: dict[str, Any]) -> SampleLine:
    size = len(sample.get("text") or "") or len(sample.get("prompt", "")) + len(sample.get("completion", ""))
    return int(sample["stage"]), str(sample["task"]), size, json.dumps(sample, ensure_ascii=False)


def _needs_text_later(record: Record) -> bool:
    # "Write the test for" pairs whole Elixir files; the curriculum orders whole book sections (and the
    # standard-library doc pages, which it reads as one more book).
    return (
        record.kind == "book"
        or (record.kind == "code" and record.language == "elixir")
        or (record.kind == "doc" and record.provenance.source == "beam_docs")
    )


def _process(record: Record) -> dict[str, Any]:
    """Filters, then (for a kept record) its samples: one trip to a worker per record.

    Samples are made before the corpus-wide dedupe; the few of records it drops are discarded. The
    record comes back without its text unless a corpus-wide step still needs it.
    """
    result = _filter(record)
    if "record" in result:
        kept = Record.from_json(result["record"])
        result["samples"] = [sample_line(s) for s in _samples(kept)]
        if not _needs_text_later(kept):
            result["record"]["text"] = ""
    return result


def _process_task(record: Record) -> tuple[dict[str, Any], bool]:
    return _cached("record", record, lambda: _process(record))


# -- the build --------------------------------------------------------------------------------------------
def _read_all(raw: Path, card: Card) -> Iterator[Record]:
    if not raw.is_dir():
        raise FileNotFoundError(f"no raw collections in {raw} (run `finetune collect …` first)")
    found = collections(raw)
    if not found:
        raise FileNotFoundError(f"no raw collections in {raw} (run `finetune collect …` first)")
    for folder in found:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        card.sources[folder.name] = {k: manifest.get(k) for k in ("records", "bytes", "by_language", "options")}
        card.skipped.extend({"source": folder.name, **s} for s in manifest.get("skipped", []))
        try:
            yield from read_collection(folder)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            card.skipped.append({"source": folder.name, "where": str(folder), "reason": f"unreadable shard: {exc}"})


def _count_drop(card: Card, drop: dict[str, Any]) -> None:
    card.drops.setdefault(drop["filter"], Counter())[drop["reason"]] += 1  # type: ignore[index]


def _parallel(pool: ProcessPoolExecutor | None, function: Any, items: Iterable[Record]) -> Iterator[Any]:
    if pool is None:
        yield from map(function, items)
    else:
        # Small chunks: file sizes vary a lot, and a big last chunk would leave a worker idle.
        yield from pool.map(function, items, chunksize=2)


class _ShardWriter:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self._file: Any = None

    def write(self, line: str) -> None:
        if self._file is None or self.count % SAMPLES_PER_SHARD == 0:
            if self._file is not None:
                self._file.close()
            self._file = (self.folder / f"part-{self.count // SAMPLES_PER_SHARD:05d}.jsonl").open("w", encoding="utf-8")
        self._file.write(line + "\n")
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def build_datasets(options: BuildOptions, console: Any = None) -> Card:
    started = time.time()
    card = Card(options={k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()})
    card.options["eval_problems"] = [str(p) for p in options.eval_problems]
    for problem in _eval_problems(options):
        if isinstance(problem, Skipped):
            card.skipped.append({"source": "eval_problems", "where": problem.where, "reason": problem.reason})
        else:
            card.contamination_by_suite[problem.suite] = 0
    say = console.print if console is not None else (lambda *args, **kwargs: None)
    # One pool for both parallel phases (workers start once); one worker means no pool at all.
    if options.workers > 1:
        pool: ProcessPoolExecutor | None = ProcessPoolExecutor(options.workers, initializer=_init_worker, initargs=(options,))
    else:
        pool = None
        _init_worker(options)
    progress = _progress_bar(console)
    try:
        with progress:
            return _build(options, card, pool, say, started, progress)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _progress_bar(console: Any) -> Any:
    """A rich progress bar on the console (none without one, e.g. in benchmarks)."""
    from contextlib import nullcontext

    if console is None:
        return nullcontext()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True)


def _build(
    options: BuildOptions, card: Card, pool: ProcessPoolExecutor | None, say: Any, started: float, progress: Any
) -> Card:

    # 1. Per record, in parallel: filters and samples.
    records = list(_read_all(options.raw, card))
    card.records_in = len(records)
    say(f"build: {len(records)} records from {len(card.sources)} collections, {options.workers} workers")
    secret_counts: Counter[str] = Counter()
    kept: list[tuple[Record, np.ndarray | None, bytes, list[SampleLine]]] = []
    task = progress.add_task("filter + samples", total=len(records)) if hasattr(progress, "add_task") else None
    for result, hit in _parallel(pool, _process_task, records):
        if task is not None:
            progress.advance(task)
        card.cache_hits += hit
        secret_counts.update(result.get("secrets", {}))
        if "drop" in result:
            _count_drop(card, result["drop"])
            matched: dict[str, str] = result.get("eval_matches", {})
            for name in matched:
                card.contamination[name] = card.contamination.get(name, 0) + 1
            for suite in set(matched.values()):
                card.contamination_by_suite[suite] = card.contamination_by_suite.get(suite, 0) + 1
        else:
            signature = result.get("signature")
            kept.append((
                Record.from_json(result["record"]),
                None if signature is None else np.array(signature, dtype=np.uint32),
                bytes.fromhex(result["digest"]),
                result["samples"],
            ))
    card.secrets = dict(secret_counts)

    # 2. Dedupe over everything kept, in collection order (the first copy wins).
    deduper = Deduper()
    unique: list[tuple[Record, list[SampleLine]]] = []
    for record, signature, digest, lines in kept:
        verdict = deduper(record, signature, digest)
        if isinstance(verdict, Drop):
            _count_drop(card, asdict(verdict))
        else:
            unique.append((record, lines))
    stats = deduper.stats
    card.dedupe = {"exact_duplicates": stats.exact_duplicates, "near_duplicates": stats.near_duplicates}
    card.records_kept = len(unique)
    card.licences = dict(Counter(r.provenance.licence or "unknown" for r, _ in unique))
    card.drops = {name: dict(reasons) for name, reasons in card.drops.items()}

    # 3. Samples, then the corpus-wide tasks; all written to a temporary folder first.
    partial = options.out.with_name(f".{options.out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    writers = {stage: _ShardWriter(partial / f"stage{stage}") for stage in STAGES}
    tasks: Counter[str] = Counter()
    chars: Counter[int] = Counter()
    try:
        for _record, lines in unique:
            for line in lines:
                _write(writers, line, tasks, chars)
        # "Write the test for" pairs a lib file with its test file, so it sees the whole corpus at once.
        for sample in write_test_samples_for(r for r, _ in unique if r.kind == "code"):
            _write(writers, sample_line(sample), tasks, chars)
        books = [r for r, _ in unique if r.kind == "book"] + list(docs_as_book(r for r, _ in unique))
        for sample in curriculum(books):
            _write(writers, sample_line(sample), tasks, chars)
        for writer in writers.values():
            writer.close()
        card.samples = {stage: writers[stage].count for stage in STAGES}
        card.tasks = dict(tasks)
        card.chars = dict(chars)
        _tokenizer_section(options, card, partial, say)
        card.seconds = round(time.time() - started, 2)
        (partial / "card.json").write_text(json.dumps(asdict(card), indent=2, default=str), encoding="utf-8")
        (partial / "README.md").write_text(render_card(card), encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _swap_into_place(partial, options.out)
    return card


def _write(writers: dict[int, _ShardWriter], line: SampleLine, tasks: Counter[str], chars: Counter[int]) -> None:
    stage, task, size, text = line
    writers[stage].write(text)
    tasks[f"stage{stage}/{task}"] += 1
    chars[stage] += size


def _tokenizer_section(options: BuildOptions, card: Card, folder: Path, say: Any) -> None:
    """Token counts per stage (from the tokenizer's tokens-per-character on these samples) and the report."""
    if not options.tokenizer_report:
        return
    from finetune.dataset.tokenizer_report import report_for

    try:
        report = report_for(options.tokenizer or None, sample_dirs=[folder / f"stage{s}" for s in STAGES])
    except Exception as exc:  # a report is informative; a broken tokenizer file must not lose the datasets
        card.skipped.append({"source": "tokenizer", "where": options.tokenizer or "embedded", "reason": str(exc)})
        say(f"[yellow]tokenizer report skipped:[/] {exc}")
        return
    card.tokenizer = report.as_dict()
    card.tokenizer_markdown = report.markdown()
    card.tokens = {stage: round(chars * report.tokens_per_char_for_stage(stage)) for stage, chars in card.chars.items()}


def _swap_into_place(partial: Path, out: Path) -> None:
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    partial.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def render_card(card: Card) -> str:
    lines = ["# DevstralElixir training data", "", f"Prompt format: `{PROMPT_FORMAT_VERSION}` · pipeline `{PIPELINE_VERSION}` · built in {card.seconds:.0f} s.", ""]
    lines += ["## Sources", "", "| source | records | MB | languages |", "| --- | --- | --- | --- |"]
    for name, info in card.sources.items():
        lines.append(f"| {name} | {info.get('records')} | {(info.get('bytes') or 0) / 1e6:.1f} | {info.get('by_language')} |")
    lines += ["", "## Filters", "", f"{card.records_in} records in, {card.records_kept} kept.", "", "| filter | reason | dropped |", "| --- | --- | --- |"]
    for name, reasons in card.drops.items():
        for reason, count in sorted(reasons.items()):
            lines.append(f"| {name} | {reason} | {count} |")
    lines += ["", f"Secrets scrubbed (replaced, not dropped): {card.secrets or 'none'}.",
              f"Duplicates: {card.dedupe.get('exact_duplicates', 0)} exact, {card.dedupe.get('near_duplicates', 0)} near (MinHash LSH).", ""]
    if card.contamination_by_suite:
        per_suite = ", ".join(f"{suite} {count}" for suite, count in card.contamination_by_suite.items())
        lines += [f"Decontaminated against evaluation suites (records dropped): {per_suite}."]
        top = sorted(card.contamination.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
        lines += [f"Problems matched: {', '.join(f'{name} ({count})' for name, count in top) or 'none'}.", ""]
    lines += ["## Licences of the records kept", "", "| licence | records |", "| --- | --- |"]
    lines += [f"| {name} | {count} |" for name, count in sorted(card.licences.items(), key=lambda kv: -kv[1])]
    lines += ["", "## Samples", "", "| stage | samples | characters | tokens (est.) |", "| --- | --- | --- | --- |"]
    for stage in STAGES:
        lines.append(f"| {stage} | {card.samples.get(stage, 0)} | {card.chars.get(stage, 0)} | {card.tokens.get(stage, '–')} |")
    lines += ["", "| task | samples |", "| --- | --- |"] + [f"| {t} | {n} |" for t, n in sorted(card.tasks.items())]
    if card.tokenizer_markdown:
        lines += ["", card.tokenizer_markdown.strip()]
    if card.skipped:
        lines += ["", f"## Skipped inputs ({len(card.skipped)})", ""]
        lines += [f"- {s.get('source')}: {s['where']}: {s['reason']}" for s in card.skipped[:200]]
    return "\n".join(lines) + "\n"
