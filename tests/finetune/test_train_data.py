"""Training data: packing, SFT masking and truncation, curriculum pacing, the resumable sampler, the
held-out split and loading the `finetune build` shards."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from torch.utils.data import DataLoader
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from finetune.train.data import (
    IGNORE_INDEX,
    ListDataset,
    PackingOptions,
    SamplerOptions,
    SftCollator,
    SftOptions,
    StepBatchSampler,
    StepSampler,
    collate_packed,
    competence,
    difficulty_order,
    encode_sft,
    encode_sft_rows,
    load_rows,
    pack_documents,
    pack_rows,
    prepare_model_for_packing,
    provenance_key,
    shards_digest,
    split_heldout,
)
from lsp.prompt import PROMPT_FORMAT_VERSION

ELIXIR = [
    "defmodule Greeter do\n  def hello(name), do: \"Hello, #{name}\"\nend\n",
    "Enum.map([1, 2, 3], fn x -> x * 2 end) |> Enum.sum()\n",
    "case File.read(path) do\n  {:ok, body} -> body\n  {:error, reason} -> raise reason\nend\n",
    "defp parse(<<c, rest::binary>>, acc), do: parse(rest, [c | acc])\n",
]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    raw.train_from_iterator(ELIXIR * 20, trainer)
    # BOS added by the tokenizer itself, as Llama/Mistral tokenizers do.
    raw.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def _row(text: str = "", prompt: str = "", completion: str = "", path: str = "lib/a.ex", **meta) -> dict:
    return {
        "stage": 1,
        "task": "t",
        "prompt": prompt,
        "completion": completion,
        "text": text or prompt + completion,
        "prompt_format": PROMPT_FORMAT_VERSION,
        "provenance": {"source": "local", "package": "app", "version": "1", "path": path},
        "meta": meta,
    }


# -- packing ---------------------------------------------------------------------------------------------


def test_positions_restart_per_document_and_first_labels_are_masked() -> None:
    eos, pad = 99, 0
    docs = [[1, 2, 3, eos], [4, 5, eos], [6, 7, 8, 9, 10, eos]]
    packed = pack_documents(docs, pad, PackingOptions(seq_len=5, shuffle_documents=False))
    assert [b.input_ids for b in packed.blocks] == [[1, 2, 3, eos, 4], [5, eos, 6, 7, 8], [9, 10, eos, 0, 0]]
    # A document cut by a block end continues as a new segment at position 0.
    assert [b.position_ids for b in packed.blocks] == [[0, 1, 2, 3, 0], [0, 1, 0, 1, 2], [0, 1, 2, 0, 1]]
    assert [b.labels for b in packed.blocks] == [
        [IGNORE_INDEX, 2, 3, eos, IGNORE_INDEX],
        [IGNORE_INDEX, eos, IGNORE_INDEX, 7, 8],
        [IGNORE_INDEX, 10, eos, IGNORE_INDEX, IGNORE_INDEX],
    ]
    assert (packed.real_tokens, packed.pad_tokens) == (13, 2)
    assert packed.packing_efficiency == pytest.approx(13 / 15)
    dropped = pack_documents(docs, pad, PackingOptions(seq_len=5, shuffle_documents=False, drop_last=True))
    assert len(dropped.blocks) == 2 and dropped.packing_efficiency == 1.0


def test_packing_efficiency_on_realistic_lengths() -> None:
    # Source files and doc pages: log-normal lengths, median ~300 tokens, a long tail past the block size.
    rng = random.Random(0)
    docs = [[7] * max(20, min(int(rng.lognormvariate(5.7, 1.0)), 8000)) + [2] for _ in range(400)]
    packed = pack_documents(docs, 0, PackingOptions(seq_len=2048))
    assert packed.packing_efficiency >= 0.95
    assert packed.real_tokens == sum(map(len, docs))  # nothing lost
    assert all(len(b.input_ids) == len(b.position_ids) == len(b.labels) == 2048 for b in packed.blocks)


def test_pack_rows_tokenizes_with_bos_and_eos(tokenizer) -> None:
    rows = [_row(text) for text in ELIXIR * 30]
    packed = pack_rows(rows, tokenizer, PackingOptions(seq_len=128, seed=3))
    assert packed.documents == len(rows)
    flat = [t for b in packed.blocks for t in b.input_ids]
    assert flat.count(tokenizer.eos_token_id) == len(rows)
    assert flat.count(tokenizer.bos_token_id) == len(rows)
    assert packed.packing_efficiency >= 0.95
    # Deterministic given the seed.
    again = pack_rows(rows, tokenizer, PackingOptions(seq_len=128, seed=3))
    assert [b.input_ids for b in again.blocks] == [b.input_ids for b in packed.blocks]


def test_no_held_out_files_packs_to_no_blocks(tokenizer) -> None:
    # data.held_out = 0 leaves the held-out side empty: that must pack to nothing, not fail.
    packed = pack_rows([], tokenizer, PackingOptions(seq_len=128, seed=3))
    assert packed.blocks == [] and packed.documents == 0


def _tiny_llama(vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )
    config._attn_implementation = "sdpa"
    return LlamaForCausalLM(config).eval()


def test_packed_documents_do_not_attend_to_each_other_on_cpu_sdpa(tokenizer) -> None:
    model = _tiny_llama(len(tokenizer))
    prepare_model_for_packing(model)
    docs = [tokenizer(t)["input_ids"] + [tokenizer.eos_token_id] for t in ELIXIR[:3]]
    seq_len = sum(map(len, docs))
    block = pack_documents(docs, 0, PackingOptions(seq_len=seq_len, shuffle_documents=False)).blocks[0]
    batch = collate_packed(ListDataset([block]))  # type: ignore[arg-type]
    assert "attention_mask" not in batch
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        start = len(docs[0])
        alone = model(input_ids=torch.tensor([docs[1]])).logits[0]
    torch.testing.assert_close(packed[start : start + len(docs[1])], alone, atol=1e-5, rtol=1e-4)
    # Packed loss is the mean over real labels only.
    out = model(**batch)
    assert torch.isfinite(out.loss)


# -- SFT -------------------------------------------------------------------------------------------------


def test_labels_only_on_the_answer() -> None:
    example = encode_sft([1, 10, 11, 12], [20, 21, 2], SftOptions(max_len=16), bos_id=1)
    assert example.input_ids == [1, 10, 11, 12, 20, 21, 2]
    assert example.labels == [IGNORE_INDEX] * 4 + [20, 21, 2]


def test_long_prompt_is_cut_from_the_left_keeping_bos() -> None:
    prompt = [1, *range(100, 120)]
    example = encode_sft(prompt, [50, 51, 2], SftOptions(max_len=10, min_prompt_tokens=4), bos_id=1)
    assert example.input_ids == [1, 114, 115, 116, 117, 118, 119, 50, 51, 2]
    assert example.prompt_truncated == 14 and example.completion_truncated == 0
    assert example.labels[:7] == [IGNORE_INDEX] * 7


def test_overlong_answer_keeps_some_prompt() -> None:
    example = encode_sft([1, 10, 11, 12, 13], list(range(50, 80)), SftOptions(max_len=10, min_prompt_tokens=2), 1)
    assert example.input_ids == [1, 12, 13, *range(50, 57)]
    assert example.completion_truncated == 23 and len(example.input_ids) == 10


def test_encode_rows_and_collate(tokenizer) -> None:
    rows = [
        _row(prompt="# File: lib/a.ex\ndef hello(name), do: ", completion='"Hello, #{name}"'),
        _row(text=ELIXIR[2]),  # a stage-3 book section: all of it is the answer
    ]
    pair, section = encode_sft_rows(rows, tokenizer, SftOptions(max_len=512))
    answer = [t for t, label in zip(pair.input_ids, pair.labels, strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(answer) == '"Hello, #{name}"</s>'
    assert pair.input_ids[0] == tokenizer.bos_token_id
    # No prompt: every token but the tokenizer's BOS is trained.
    assert section.input_ids[0] == tokenizer.bos_token_id
    assert section.labels == [IGNORE_INDEX, *section.input_ids[1:]]
    batch = SftCollator(pad_id=tokenizer.pad_token_id, multiple_of=8)(ListDataset([pair, section]))  # type: ignore[arg-type]
    width = batch["input_ids"].shape[1]
    assert width % 8 == 0 and width >= max(len(pair.input_ids), len(section.input_ids))
    assert int(batch["attention_mask"][0].sum()) == len(pair.input_ids)
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


# -- curriculum and sampler ------------------------------------------------------------------------------


def test_difficulty_order_sorts_easy_to_hard_with_stable_ties() -> None:
    rows = [
        _row("c", difficulty={"score": 0.9}, curriculum_index=2),
        _row("a", difficulty={"score": 0.1}, curriculum_index=0),
        _row("a-pair", difficulty={"score": 0.1}, curriculum_index=0),
        _row("none"),
        _row("b", difficulty={"score": 0.5}, curriculum_index=1),
    ]
    assert difficulty_order(rows) == [1, 2, 4, 0, 3]


def test_competence_grows_from_c0_to_everything() -> None:
    opts = SamplerOptions(order="competence", initial_competence=0.1, competence_steps=100)
    values = [competence(t, opts) for t in range(0, 150, 10)]
    assert values[0] == pytest.approx(0.1)
    assert values == sorted(values)
    assert competence(100, opts) == pytest.approx(1.0) and competence(140, opts) == 1.0


def test_competence_sampler_draws_only_from_the_easiest() -> None:
    order = list(reversed(range(100)))  # say example 99 is the easiest
    opts = SamplerOptions(batch_size=4, order="competence", initial_competence=0.1, competence_steps=50)
    sampler = StepSampler(100, opts, order)
    early = {i for b in sampler.batches(0, 3) for i in b}
    pool = math.ceil(competence(2, opts) * 100)
    assert pool < 30 and early <= set(order[:pool])
    late = {i for b in sampler.batches(60, 160) for i in b}
    assert len(late) > 90  # everything is reachable after T steps


def test_ordered_follows_the_curriculum_every_epoch() -> None:
    order = [3, 0, 2, 1]
    sampler = StepSampler(4, SamplerOptions(batch_size=3, order="ordered"), order)
    assert list(sampler.batches(0, 4)) == [[3, 0, 2], [1, 3, 0], [2, 1, 3], [0, 2, 1]]


@pytest.mark.parametrize("order", ["shuffle", "ordered", "competence"])
def test_sampler_resumes_the_same_order(order) -> None:
    opts = SamplerOptions(batch_size=4, order=order, seed=7, grad_accum=2, competence_steps=10)
    full = list(StepSampler(37, opts).batches(0, 50))
    resumed = StepSampler(37, opts)  # a fresh process: no state but the step
    start = resumed.first_batch_of_step(11)
    assert list(resumed.batches(start, 50)) == full[start:]
    other_seed = list(StepSampler(37, SamplerOptions(batch_size=4, order=order, seed=8)).batches(0, 50))
    if order != "ordered":
        assert other_seed != full


def test_shuffle_visits_every_example_once_per_epoch() -> None:
    sampler = StepSampler(12, SamplerOptions(batch_size=4, seed=1))
    first, second = [i for b in sampler.batches(0, 3) for i in b], [i for b in sampler.batches(3, 6) for i in b]
    assert sorted(first) == sorted(second) == list(range(12))
    assert first != second


@pytest.mark.parametrize("order", ["shuffle", "competence"])
def test_ranks_take_disjoint_slices_of_the_global_batch(order) -> None:
    def run(rank: int) -> list[list[int]]:
        opts = SamplerOptions(batch_size=3, order=order, seed=2, num_replicas=2, rank=rank, competence_steps=5)
        return list(StepSampler(80, opts).batches(0, 8))

    single_opts = SamplerOptions(batch_size=6, order=order, seed=2, competence_steps=5)
    single = list(StepSampler(80, single_opts).batches(0, 8))
    for b0, b1, whole in zip(run(0), run(1), single, strict=True):
        assert not set(b0) & set(b1)
        assert b0 + b1 == whole  # the same global order as one process with the global batch


def test_batch_sampler_in_a_dataloader_resumes(tokenizer) -> None:
    data = ListDataset(encode_sft_rows([_row(t) for t in ELIXIR * 5], tokenizer, SftOptions(max_len=64)))
    sampler = StepSampler(len(data), SamplerOptions(batch_size=2, seed=4))
    collate = SftCollator(pad_id=tokenizer.pad_token_id)
    full = [b["input_ids"].tolist() for b in DataLoader(data, batch_sampler=StepBatchSampler(sampler, 12), collate_fn=collate)]
    tail = DataLoader(data, batch_sampler=StepBatchSampler(sampler, 12, start=5), collate_fn=collate)
    assert len(tail) == 7
    assert [b["input_ids"].tolist() for b in tail] == full[5:]


def test_sampler_options_are_validated_together() -> None:
    with pytest.raises(ValueError, match=r"rank 2 outside.*initial_competence"):
        StepSampler(10, SamplerOptions(num_replicas=2, rank=2, initial_competence=0.0))


# -- held-out split and loading --------------------------------------------------------------------------


def test_heldout_split_keeps_whole_files_on_one_side() -> None:
    rows = [_row(f"{f}-{k}", path=f"lib/f{f}.ex") for f in range(40) for k in range(f % 4 + 1)]
    train, held = split_heldout(rows, 0.1, seed=0)
    assert not {provenance_key(r) for r in train} & {provenance_key(r) for r in held}
    assert len({provenance_key(r) for r in held}) == 4
    assert len(train) + len(held) == len(rows)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert {r["text"] for r in split_heldout(shuffled, 0.1, seed=0)[1]} == {r["text"] for r in held}
    assert {r["text"] for r in split_heldout(rows, 0.1, seed=1)[1]} != {r["text"] for r in held}
    # Two releases of one file are one file: both rows land on the same side.
    v2 = _row("v2", path="lib/x.ex")
    v2["provenance"] = {**v2["provenance"], "version": "2"}
    versions = [_row("v1", path="lib/x.ex"), v2, _row("y", path="lib/y.ex")]
    for seed in range(6):
        train_v, held_v = split_heldout(versions, 0.5, seed=seed)
        assert sorted(len(side) for side in (train_v, held_v)) == [1, 2]


def _write_shards(root: Path, stage: int, rows: list[dict], per_shard: int = 2) -> None:
    folder = root / f"stage{stage}"
    folder.mkdir(parents=True)
    for n in range(0, len(rows), per_shard):
        lines = "".join(json.dumps(r) + "\n" for r in rows[n : n + per_shard])
        (folder / f"part-{n // per_shard:05d}.jsonl").write_text(lines)


def test_load_rows_from_shards(tmp_path: Path) -> None:
    rows = [_row(t, path=f"lib/{i}.ex") for i, t in enumerate(ELIXIR)]
    _write_shards(tmp_path, 1, rows)
    assert [r["text"] for r in load_rows(tmp_path, 1)] == ELIXIR
    digest = shards_digest(tmp_path, 1)
    (tmp_path / "stage1" / "part-00000.jsonl").write_text(json.dumps(rows[1]) + "\n")
    assert shards_digest(tmp_path, 1) != digest
    with pytest.raises(FileNotFoundError):
        load_rows(tmp_path, 2)


def test_stale_prompt_format_is_refused(tmp_path: Path) -> None:
    _write_shards(tmp_path, 2, [{**_row("x"), "prompt_format": "devstral-elixir-prompt/0"}])
    with pytest.raises(ValueError, match="prompt/0"):
        load_rows(tmp_path, 2)
    assert len(load_rows(tmp_path, 2, expect_prompt_format=None)) == 1
