"""Forgetting: a GGUF model's perplexity on general English and on earlier stages' held-out data.

A stage-k adapter is compared with stage k−1 and with the base on the same texts: a perplexity that rises
on general English or on stage k−1's held-out split is what the later stage cost the earlier ones.

    sets = [general_english(), bundled_elixir(), stage_heldout(Path("data/datasets/stage1"), 0.02, 3407)]
    base = perplexities(ModelChoice(), sets)
    tuned = perplexities(ModelChoice(adapter=Path("out/adapter.gguf")), sets)
    rows = forgetting_table({"base": base, "stage 2": tuned}, baseline_label="base")

Scoring is `finetune.export.verify`'s: llama.cpp logits over non-overlapping windows of each text, tokenized
by the GGUF's own tokenizer without BOS (as the export's held-out check does), so numbers from different
adapters on one base are comparable token for token. Only GGUF choices have logits; `--endpoint` has none.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from finetune.eval.generate import ModelChoice, gguf_paths
from finetune.eval.problems import json_objects
from finetune.export.heldout import HELDOUT_ELIXIR
from finetune.export.verify import open_gguf, perplexity, windows
from finetune.train.config import RunConfig, load_config, shipped_general_text
from finetune.train.data import Row, prompt_and_completion, split_heldout
from lsp.backends.base import BackendError

DEFAULT_WINDOW = 512
SHARD_GLOB = "part-*.jsonl"  # what `finetune build` writes per stage (see finetune.train.data.shard_paths)


class TextSetError(ValueError):
    """A text file or dataset that cannot be read as a text set; the message names the file (and line)."""


@dataclass(frozen=True)
class TextSet:
    name: str
    texts: tuple[str, ...]


class SetPerplexity(TypedDict):
    perplexity: float
    tokens: int  # predicted tokens the perplexity is averaged over


# -- text sets ----------------------------------------------------------------------------------------------


def general_english() -> TextSet:
    """The shipped general-English eval text (disjoint from the EWC anchor text)."""
    return TextSet("general English", (shipped_general_text("eval").read_text(encoding="utf-8"),))


def bundled_elixir() -> TextSet:
    """The project-written held-out Elixir of the export check (never in any training source)."""
    return TextSet("held-out Elixir", HELDOUT_ELIXIR)


def shuffled_words(texts: TextSet, seed: int = 0) -> TextSet:
    """The same words in a random order: a real language model must find it much less likely."""
    rng = random.Random(seed)
    shuffled = []
    for text in texts.texts:
        words = text.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    return TextSet(f"{texts.name} (shuffled words)", tuple(shuffled))


def row_text(row: Row) -> str:
    """What a dataset row reads as: stage 1's "text", or stage 2/3's prompt followed by its completion."""
    prompt, answer = prompt_and_completion(row)
    return prompt + answer


def _jsonl_rows(path: Path) -> list[tuple[str, Row]]:
    """(file:line, row) for every non-blank line of a JSONL file."""
    return [(f"{path}:{number}", row) for number, row in json_objects(path, TextSetError)]


def _texts_of(rows: Iterable[tuple[str, Row]]) -> tuple[str, ...]:
    texts = []
    for where, row in rows:
        for field in ("text", "prompt", "completion"):
            if field in row and row[field] is not None and not isinstance(row[field], str):
                raise TextSetError(f"{where}: field {field!r} is {type(row[field]).__name__}, not a string")
        text = row_text(row)
        if not text:
            raise TextSetError(f"{where}: no text (a row needs \"text\", or \"prompt\" and \"completion\")")
        texts.append(text)
    return tuple(texts)


def from_file(path: Path, name: str = "") -> TextSet:
    """A `.jsonl` file of dataset rows (one text each), or any other UTF-8 file as a single text."""
    path = Path(path)
    if not path.is_file():
        raise TextSetError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        texts = _texts_of(_jsonl_rows(path))
    else:
        try:
            texts = (path.read_text(encoding="utf-8"),)
        except UnicodeDecodeError as exc:
            raise TextSetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not any(text.strip() for text in texts):
        raise TextSetError(f"{path}: no text")
    return TextSet(name or path.name, texts)


def stage_heldout(dataset: Path, fraction: float, seed: int, name: str = "") -> TextSet:
    """The held-out rows training kept out of a stage: `dataset` is the stage's folder of shards (what
    training splits: all of them together) or one JSONL file; `fraction` is `data.held_out` and `seed` the
    stage's `training.stageN.seed`."""
    dataset = Path(dataset)
    if dataset.is_dir():
        shards = sorted(dataset.glob(SHARD_GLOB))
        if not shards:
            raise TextSetError(f"{dataset}: no {SHARD_GLOB} shards (run `finetune build`)")
    elif dataset.is_file():
        shards = [dataset]
    else:
        raise TextSetError(f"{dataset}: no such file or folder")
    located = [entry for shard in shards for entry in _jsonl_rows(shard)]
    where = {id(row): place for place, row in located}
    _train, held = split_heldout([row for _place, row in located], fraction, seed)
    if not held:
        raise TextSetError(f"{dataset}: held-out fraction {fraction} keeps no rows out")
    return TextSet(name or f"{dataset.stem} held-out", _texts_of((where[id(row)], row) for row in held))


def training_heldout(config: RunConfig, stage: int) -> TextSet:
    """Stage `stage`'s held-out split exactly as a run with `config` drew it (see train.runner.stage_data)."""
    folder = Path(config.data.datasets) / f"stage{stage}"
    return stage_heldout(folder, config.data.held_out, config.training.stage(stage).seed, f"stage {stage} held-out")


def perplexity_sets(files: Sequence[Path] = (), heldout_config: Path | None = None) -> tuple[TextSet, ...]:
    """What `finetune eval` measures forgetting on: general English, the bundled held-out Elixir, each
    file given, and each stage's held-out split of a training config whose stage dataset exists."""
    sets = [general_english(), bundled_elixir(), *(from_file(path) for path in files)]
    if heldout_config is not None:
        config = load_config(heldout_config, check_paths=False)
        sets += [training_heldout(config, stage) for stage in (1, 2, 3)
                 if (Path(config.data.datasets) / f"stage{stage}").is_dir()]
    return tuple(sets)


# -- scoring ------------------------------------------------------------------------------------------------


def score_paths(choice: ModelChoice) -> tuple[Path, Path | None]:
    """The GGUFs to score; an endpoint has none (no logits over the OpenAI-compatible API)."""
    if choice.endpoint:
        raise BackendError(
            f"--endpoint {choice.endpoint}: perplexity needs the model's logits, which an OpenAI-compatible "
            "server does not return; measure forgetting with --model [--adapter] or --registry"
        )
    return gguf_paths(choice)


class _LlamaTokenizer:
    """The GGUF's tokenizer behind the Hugging Face call that `verify.windows` makes."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=False))}


def perplexities(
    choice: ModelChoice, sets: Sequence[TextSet], *, window: int = DEFAULT_WINDOW, threads: int | None = None
) -> dict[str, SetPerplexity]:
    """Perplexity of the chosen GGUF (+ adapter) on each set, over non-overlapping `window`-token windows."""
    if window < 2:
        raise ValueError(f"window must be at least 2 tokens, got {window}")
    names = [text_set.name for text_set in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"text set names must be unique, got {names}")
    model_path, lora_path = score_paths(choice)
    results: dict[str, SetPerplexity] = {}
    with contextlib.closing(
        open_gguf(model_path, lora_path=lora_path, n_ctx=window, threads=threads or choice.threads or None)
    ) as llm:
        tokenizer = _LlamaTokenizer(llm)
        for text_set in sets:
            ids = windows(tokenizer, text_set.texts, window)
            if not ids:
                raise TextSetError(f"{text_set.name}: too little text to score (fewer than 2 tokens)")
            results[text_set.name] = {
                "perplexity": perplexity(llm, ids),
                "tokens": sum(len(piece) - 1 for piece in ids),
            }
    return results


# -- the report ---------------------------------------------------------------------------------------------


def _value(score: SetPerplexity | float) -> float:
    return float(score["perplexity"]) if isinstance(score, Mapping) else float(score)


def forgetting_table(
    results_by_model: Mapping[str, Mapping[str, SetPerplexity | float]], baseline_label: str
) -> list[dict[str, Any]]:
    """One row per (model, set), the baseline's first: the perplexity and its ratio to the baseline's on
    that set (> 1: the model does worse than the baseline there). Compare stage k with stage k−1 by passing
    k−1's label as the baseline. `ratio` is None where the baseline did not score the set."""
    if baseline_label not in results_by_model:
        raise ValueError(f"baseline {baseline_label!r} is not among the models: {', '.join(results_by_model)}")
    baseline = results_by_model[baseline_label]
    labels = [baseline_label, *(label for label in results_by_model if label != baseline_label)]
    rows = []
    for label in labels:
        for set_name, score in results_by_model[label].items():
            value = _value(score)
            reference = _value(baseline[set_name]) if set_name in baseline else None
            rows.append({
                "model": label,
                "set": set_name,
                "perplexity": value,
                "tokens": score["tokens"] if isinstance(score, Mapping) else None,
                "baseline_perplexity": reference,
                "ratio": value / reference if reference and math.isfinite(reference) else None,
            })
    return rows
