"""EWC anchored at the base on general English: the shipped texts, block perplexity, the anchor's Fisher at
a fresh adapter, less forgetting in a real (tiny) training run, and no second anchor on resume."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from safetensors.torch import load_file  # noqa: E402
from transformers import AutoTokenizer, LlamaForCausalLM  # noqa: E402

from finetune.train.config import config_from_dict, shipped_general_text  # noqa: E402
from finetune.train.ewc import EWC  # noqa: E402
from finetune.train.general_anchor import ANCHOR_BLOCK_TOKENS, consolidate_general_anchor  # noqa: E402
from finetune.train.model import LoraOptions, attach_lora, load_adapter, load_base  # noqa: E402
from finetune.train.perplexity import perplexity, text_blocks  # noqa: E402
from finetune.train.runner import checkpoints, run  # noqa: E402
from lsp.prompt import PROMPT_FORMAT_VERSION  # noqa: E402
from tests.finetune.test_train_runner import ELIXIR  # noqa: E402
from tests.finetune.tiny_model import build_tiny_llama  # noqa: E402

SEQ = 64


def _sentences(text: str) -> set[str]:
    return {s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 30}


def test_shipped_texts_are_disjoint_plain_english() -> None:
    anchor, held = (shipped_general_text(kind).read_text(encoding="utf-8") for kind in ("anchor", "eval"))
    for text in (anchor, held):
        assert 10_000 <= len(text.encode()) <= 16_000
        assert not re.search(r"[{}<>|=`#\\]|;$|\bdef\b|->", text, re.MULTILINE), "prose only, no code"
        assert len([p for p in text.split("\n\n") if p.strip()]) >= 20  # many short pieces, varied topics
    assert not _sentences(anchor) & _sentences(held), "the eval text must be unseen by the anchor"


# -- the tiny model and data ------------------------------------------------------------------------------


def _row(stage: int, task: str, path: str, **fields) -> dict:
    return {"stage": stage, "task": task, "prompt_format": PROMPT_FORMAT_VERSION,
            "provenance": {"source": "local", "package": "shop", "path": path}, "meta": {}, **fields}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A tiny llama that has first learnt some English (so there is something to forget), and toy Elixir
    datasets for stages 1 and 2."""
    root = tmp_path_factory.mktemp("ewc_general")
    build_tiny_llama(root / "tiny", max_positions=SEQ)
    tokenizer = AutoTokenizer.from_pretrained(root / "tiny")
    model = LlamaForCausalLM.from_pretrained(root / "tiny")
    english = shipped_general_text("anchor").read_text() + shipped_general_text("eval").read_text()
    blocks = [b for b in text_blocks(english, tokenizer, SEQ) if len(b) == SEQ]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        batch = torch.tensor([blocks[i] for i in torch.randint(0, len(blocks), (8,), generator=generator)])
        optimizer.zero_grad()
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
    model.save_pretrained(root / "tiny")
    rows = {
        1: [_row(1, "causal_code", f"lib/f{i}.ex", text=f"# File: lib/f{i}.ex\n{ELIXIR[i % 3]}") for i in range(24)],
        2: [_row(2, "fim", f"lib/g{i}.ex", prompt=f"# File: lib/g{i}.ex\ndef add(a, b), do: ", completion="a + b\n")
            for i in range(8)],
    }
    for stage, items in rows.items():
        folder = root / "datasets" / f"stage{stage}"
        folder.mkdir(parents=True)
        (folder / "part-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    return root


def _config(workspace: Path, name: str, ewc: dict, stages: tuple[int, ...] = (1,)):
    return config_from_dict({
        "name": name, "backend": "hf", "device": "cpu", "output_dir": str(workspace / "runs" / name),
        "model": {"base": str(workspace / "tiny"), "dtype": "float32", "max_seq_len": SEQ},
        "lora": {"rank": 4, "alpha": 8, "dropout": 0.0, "qlora": False, "compute_dtype": "float32"},
        "training": {"stages": list(stages),
                     "stage1": {"max_steps": 30, "lr": 5e-3, "batch_size": 2, "warmup": 0.0},
                     "stage2": {"max_steps": 3, "lr": 5e-3, "batch_size": 2, "warmup": 0.0}},
        "ewc": {"fisher_samples": 2, **ewc},
        "checkpoints": {"every_steps": 1000},
        "data": {"datasets": str(workspace / "datasets"), "held_out": 0.2, "heldout_examples": 1},
        "logging": {"every_steps": 100, "tensorboard": False, "plots": False},
    })


# -- perplexity in blocks ---------------------------------------------------------------------------------


def test_blocks_cover_the_text_once_in_order(workspace: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(workspace / "tiny")
    text = shipped_general_text("eval").read_text()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    blocks = text_blocks(text, tokenizer, 100)
    assert [t for block in blocks for t in block] == ids
    assert all(len(block) == 100 for block in blocks[:-1]) and 2 <= len(blocks[-1]) <= 100
    assert text_blocks(text, tokenizer, 100, max_blocks=3) == blocks[:3]
    assert text_blocks(text, tokenizer, 100) == blocks  # deterministic
    with pytest.raises(ValueError):
        text_blocks(text, tokenizer, 1)


def test_perplexity_is_exp_of_the_mean_token_nll(workspace: Path) -> None:
    model, tokenizer = load_base(str(workspace / "tiny"), dtype="float32")
    text = shipped_general_text("eval").read_text()[:1500]
    tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    width = 48 if tokens % 48 > 1 else 47
    blocks = text_blocks(text, tokenizer, width)
    assert 2 <= len(blocks[-1]) < width  # a short last block: padding must not change the result
    nll, count = 0.0, 0
    with torch.no_grad():
        for block in blocks:
            ids = torch.tensor([block])
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
            nll -= float(logprobs.gather(1, ids[0, 1:, None]).sum())
            count += len(block) - 1
    for batch_size in (1, 3):
        result = perplexity(model, blocks, batch_size=batch_size, pad_id=tokenizer.pad_token_id)
        assert result.tokens == count and result.blocks == len(blocks)
        assert result.mean_nll == pytest.approx(nll / count, rel=1e-4)
        assert result.perplexity == pytest.approx(math.exp(nll / count), rel=1e-4)


# -- the anchor ---------------------------------------------------------------------------------------------


def test_anchor_fisher_at_a_fresh_adapter_is_on_lora_b_only(workspace: Path) -> None:
    model, tokenizer = load_base(str(workspace / "tiny"), dtype="float32")
    model = attach_lora(model, LoraOptions(r=4, alpha=8, gradient_checkpointing=False))
    ewc = EWC(lam=1.0)
    blocks = consolidate_general_anchor(model, tokenizer, ewc, shipped_general_text("anchor"), samples=6,
                                        max_seq_len=SEQ, normalize="mean")
    assert blocks == 6 and ewc.consolidations == 1 and ewc.active
    a_names = [n for n in ewc.fisher if "lora_A" in n]
    b_names = [n for n in ewc.fisher if "lora_B" in n]
    assert a_names and len(a_names) == len(b_names) == len(ewc.fisher) / 2
    assert all(float(ewc.fisher[n].abs().sum()) == 0.0 for n in a_names), "a fresh lora_A gets no gradient"
    assert all(float(ewc.fisher[n].sum()) > 0.0 for n in b_names)
    assert all(float(ewc.anchors[n].abs().sum()) == 0.0 for n in b_names), "θ* is the base: lora_B = 0"
    assert float(torch.cat([f.flatten() for f in ewc.fisher.values()]).mean()) == pytest.approx(1.0)
    # Block length is capped by the shorter of the anchor's block and the model's context.
    assert ANCHOR_BLOCK_TOKENS > SEQ


def _english_and_elixir_perplexity(workspace: Path, adapter: Path | None) -> tuple[float, float]:
    model, tokenizer = load_base(str(workspace / "tiny"), dtype="float32")
    if adapter is not None:
        model = load_adapter(model, adapter, trainable=False)
    english = text_blocks(shipped_general_text("anchor").read_text(), tokenizer, SEQ)
    elixir = text_blocks("\n".join(ELIXIR * 4), tokenizer, SEQ)
    pad = tokenizer.pad_token_id
    return perplexity(model, english, pad_id=pad).perplexity, perplexity(model, elixir, pad_id=pad).perplexity


def test_the_anchor_limits_the_rise_of_english_perplexity(workspace: Path) -> None:
    english_base, elixir_base = _english_and_elixir_perplexity(workspace, None)
    after = {}
    for name, ewc in (("plain", {"enabled": False}), ("anchored", {"lambda": 10.0, "general_text": "builtin"})):
        messages: list[str] = []
        run(_config(workspace, name, ewc), say=messages.append)
        assert any("anchored the base" in m for m in messages) == (name == "anchored"), messages
        after[name] = _english_and_elixir_perplexity(workspace, workspace / "runs" / name / "stage1" / "adapter")
    rise = {name: english - english_base for name, (english, _) in after.items()}
    assert rise["plain"] > 0.2 * english_base, "the toy task does make the model forget English"
    assert rise["anchored"] < 0.5 * rise["plain"], (english_base, after)
    assert after["anchored"][1] < elixir_base, "and the anchored run still learns the toy task"


def test_resume_keeps_the_saved_anchor_instead_of_taking_a_new_one(workspace: Path) -> None:
    config = _config(workspace, "resumed", {"lambda": 10.0, "general_text": "builtin"}, stages=(1, 2))
    first: list[str] = []
    run(config, stages=[1], say=first.append)
    assert any("anchored the base" in m for m in first)
    saved = load_file(str(checkpoints(config.output_path)[-1] / "ewc.safetensors"))
    assert int(saved["meta/consolidations"]) == 2  # the anchor, then stage 1's Fisher
    second: list[str] = []
    run(config, stages=[2], resume=True, say=second.append)
    assert not any("anchored" in m for m in second), second
    saved = load_file(str(checkpoints(config.output_path)[-1] / "ewc.safetensors"))
    assert int(saved["meta/consolidations"]) == 3  # + stage 2, no second anchor
