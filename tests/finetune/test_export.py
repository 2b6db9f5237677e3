"""`finetune export` on tiny llama and qwen2 models built here (no downloads): GGUF adapter and merged
routes, the Q/K permutation, scale folding, metadata, the CLI and atomic output.

Adapters get random non-zero lora_B: a fresh adapter's B is zero (a no-op that any exporter would "pass"),
and a few training steps leave B small, so random values are what makes every exported tensor — the
permuted q/k ones included — change the logits enough for the check to see a mistake.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
gguf = pytest.importorskip("gguf")
llama_cpp = pytest.importorskip("llama_cpp")

from transformers import Qwen2Config, Qwen2ForCausalLM  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from finetune.cli import app  # noqa: E402
from finetune.export import pipeline  # noqa: E402
from finetune.export.adapter import AdapterError, read_peft_adapter  # noqa: E402
from finetune.export.gguf_names import TensorNames, UnsupportedModelError, arch_spec, permute_rows_for_rope  # noqa: E402
from finetune.export.metadata import read_gguf_metadata  # noqa: E402
from finetune.export.pipeline import ExportError, ExportOptions, export  # noqa: E402
from finetune.export.tokenizer import detect_pre_tokenizer  # noqa: E402
from finetune.train.model import LoraOptions, attach_lora, load_base, randomize_lora_b, save_adapter  # noqa: E402
from lsp.prompt import PROMPT_FORMAT_METADATA_KEY, PROMPT_FORMAT_VERSION  # noqa: E402
from tests.finetune.tiny_model import build_tiny_llama, tiny_tokenizer  # noqa: E402

TARGETS = 7
LAYERS = 2


# -- fixtures ---------------------------------------------------------------------------------------------
def _build_tiny_qwen2(directory: Path) -> Path:
    tokenizer = tiny_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(1)
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():  # transformers initialises biases to zero; q/k/v biases must count in the check
        for name, parameter in model.named_parameters():
            if name.endswith("_proj.bias"):
                parameter.normal_(0.0, 0.2)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _make_adapter(base: Path, out: Path, *, scale: float = 0.5, seed: int = 0, **lora: object) -> Path:
    model, _tokenizer = load_base(str(base))
    options = LoraOptions(r=4, alpha=8, gradient_checkpointing=False, **lora)  # type: ignore[arg-type]
    peft_model = attach_lora(model, options)
    randomize_lora_b(peft_model, scale, seed)
    return save_adapter(peft_model, out)


@pytest.fixture(scope="module")
def llama_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), max_positions=512)


@pytest.fixture(scope="module")
def llama_adapter(llama_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_adapter(llama_base, tmp_path_factory.mktemp("llama-adapter") / "adapter")


@pytest.fixture(scope="module")
def qwen2_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="module")
def qwen2_adapter(qwen2_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_adapter(qwen2_base, tmp_path_factory.mktemp("qwen2-adapter") / "adapter")


def _quiet(_message: str) -> None:
    pass


def _export(adapter: Path, base: Path, out: Path, **settings: object) -> dict:
    options = ExportOptions(adapter=adapter, base=str(base), out=out, threads=1, **settings)  # type: ignore[arg-type]
    return export(options, say=_quiet)


# -- the permutation and names ----------------------------------------------------------------------------
def _rope_rotate_half(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Hugging Face's RoPE: dimension i pairs with i + d/2."""
    half = x.shape[-1] // 2
    cos, sin = torch.cos(angles).repeat(2), torch.sin(angles).repeat(2)
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def _rope_interleaved(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """llama.cpp's RoPE for the llama architecture: dimension 2i pairs with 2i + 1."""
    even, odd = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = even * torch.cos(angles) - odd * torch.sin(angles)
    out[..., 1::2] = even * torch.sin(angles) + odd * torch.cos(angles)
    return out


def test_permutation_turns_rotate_half_rope_into_interleaved_rope() -> None:
    n_head, head_dim, hidden = 3, 8, 12
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(n_head * head_dim, hidden, generator=generator)
    x = torch.randn(hidden, generator=generator)
    angles = 5 * (10000.0 ** (-torch.arange(head_dim // 2) / (head_dim // 2)))
    hf = _rope_rotate_half((weight @ x).reshape(n_head, head_dim), angles).reshape(-1)
    permuted = permute_rows_for_rope(weight, n_head)
    ours = _rope_interleaved((permuted @ x).reshape(n_head, head_dim), angles).reshape(-1)
    # After RoPE both layouts hold the same values, only in each one's order: the dot products of q and k
    # (what attention uses) are therefore identical.
    assert torch.allclose(ours, permute_rows_for_rope(hf.unsqueeze(1), n_head).squeeze(1), atol=1e-5)
    assert not torch.allclose(_rope_interleaved((weight @ x).reshape(n_head, head_dim), angles).reshape(-1),
                              permute_rows_for_rope(hf.unsqueeze(1), n_head).squeeze(1), atol=1e-3)


def test_names_and_which_tensors_are_permuted(llama_base: Path, qwen2_base: Path) -> None:
    from transformers import AutoConfig

    llama = TensorNames(arch_spec(AutoConfig.from_pretrained(llama_base)), AutoConfig.from_pretrained(llama_base))
    assert llama.gguf_name("model.layers.1.self_attn.q_proj.weight") == "blk.1.attn_q.weight"
    assert llama.gguf_name("model.embed_tokens.weight") == "token_embd.weight"
    assert (llama.rope_heads("model.layers.0.self_attn.q_proj.weight"), llama.rope_heads("model.layers.0.self_attn.k_proj"),
            llama.rope_heads("model.layers.0.self_attn.v_proj.weight")) == (4, 2, None)
    qwen2 = TensorNames(arch_spec(AutoConfig.from_pretrained(qwen2_base)), AutoConfig.from_pretrained(qwen2_base))
    assert qwen2.spec.gguf_arch == "qwen2"
    assert qwen2.rope_heads("model.layers.0.self_attn.q_proj.bias") is None  # NEOX RoPE: nothing to permute
    with pytest.raises(UnsupportedModelError, match=re.escape("model.layers.0.self_attn.qkv_proj.weight")):
        llama.gguf_name("model.layers.0.self_attn.qkv_proj.weight")


def test_unsupported_architecture_is_named() -> None:
    with pytest.raises(UnsupportedModelError, match=r"'gpt2' \(GPT2LMHeadModel\).*llama, mistral, qwen2"):
        arch_spec({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
    assert arch_spec({"model_type": "mistral"}).gguf_arch == "llama"


@pytest.mark.parametrize(
    ("pre_tokenizer", "expected"),
    [
        ({"type": "ByteLevel", "use_regex": True}, "gpt-2"),
        ({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                 {"type": "ByteLevel", "use_regex": True}]}, "smollm"),
        ({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"}},
            {"type": "ByteLevel", "use_regex": False}]}, "qwen2"),
        ({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"}},
            {"type": "ByteLevel", "use_regex": False}]}, "llama-bpe"),
        ({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"}},
            {"type": "ByteLevel", "use_regex": False}]}, "tekken"),
        ({"type": "Metaspace"}, None),
    ],
)
def test_pre_tokenizer_families(pre_tokenizer: dict, expected: str | None) -> None:
    assert detect_pre_tokenizer({"pre_tokenizer": pre_tokenizer}) == expected


# -- adapter route ----------------------------------------------------------------------------------------
def test_adapter_route_llama_matches_torch(llama_base: Path, llama_adapter: Path, tmp_path: Path) -> None:
    report = _export(llama_adapter, llama_base, tmp_path / "out")
    check = report["logits"]["f16_base"]
    assert check["passed"] and check["top1_agreement"] >= 0.99 and check["max_abs_diff"] < 0.1
    # The adapter moves the model far more than the export error: a broken adapter could not pass.
    assert report["adapter_effect"]["top1_agreement"] < 0.9
    assert report["adapter_effect"]["max_abs_diff"] > 10 * check["max_abs_diff"]
    path = tmp_path / "out" / "adapter.gguf"
    reader = gguf.GGUFReader(path)
    alpha = reader.fields["adapter.lora.alpha"]
    assert alpha.types == [gguf.GGUFValueType.FLOAT32] and alpha.contents() == 8.0
    meta = read_gguf_metadata(path)
    assert (meta["general.type"], meta["adapter.type"], meta["general.architecture"]) == ("adapter", "lora", "llama")
    assert meta[PROMPT_FORMAT_METADATA_KEY] == PROMPT_FORMAT_VERSION
    names = {tensor.name for tensor in reader.tensors}
    assert len(names) == 2 * TARGETS * LAYERS and "blk.1.attn_k.weight.lora_b" in names
    shapes = {tensor.name: [int(n) for n in tensor.shape] for tensor in reader.tensors}
    assert shapes["blk.0.attn_q.weight.lora_a"] == [32, 4] and shapes["blk.0.attn_k.weight.lora_b"] == [4, 16]
    written = json.loads((tmp_path / "out" / "export_report.json").read_text())
    assert written["files"]["adapter.gguf"]["bytes"] == path.stat().st_size
    assert not list(tmp_path.glob(".out.tmp-*")) and not (tmp_path / "out" / "base-f16.check.gguf").exists()


def test_adapter_without_the_qk_permutation_fails_the_check(
    llama_base: Path, llama_adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative control: lora_b written in Hugging Face's row order is caught by the logit check."""
    original = TensorNames.to_gguf_layout

    def adapter_unpermuted(self: TensorNames, hf_name: str, rows: torch.Tensor) -> torch.Tensor:
        return rows if rows.shape[-1] == 4 else original(self, hf_name, rows)  # rank 4: a lora_b

    monkeypatch.setattr(TensorNames, "to_gguf_layout", adapter_unpermuted)
    with pytest.raises(ExportError, match="adapter check failed"):
        _export(llama_adapter, llama_base, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_rslora_and_per_module_alpha_are_folded_into_lora_b(llama_base: Path, tmp_path: Path) -> None:
    adapter = _make_adapter(llama_base, tmp_path / "adapter", use_rslora=True, seed=3)
    config_path = adapter / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["alpha_pattern"] = {"v_proj": 32}  # PEFT applies this on load, so the torch reference has it too
    config_path.write_text(json.dumps(config))
    assert read_peft_adapter(adapter).pairs[0].scale == pytest.approx(8 / 2)  # alpha / sqrt(r)
    report = _export(adapter, llama_base, tmp_path / "out")
    assert report["adapter_gguf"]["scale_folded_into_lora_b"] == TARGETS * LAYERS
    assert report["logits"]["f16_base"]["top1_agreement"] >= 0.99


def test_adapter_with_non_lora_tensors_is_refused(llama_adapter: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    adapter = tmp_path / "adapter"
    shutil.copytree(llama_adapter, adapter)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    tensors["base_model.model.model.layers.0.self_attn.q_proj.bias"] = torch.zeros(32)
    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    with pytest.raises(AdapterError, match=r"q_proj\.bias.*--route merged"):
        read_peft_adapter(adapter)


def test_adapter_route_qwen2_matches_torch(qwen2_base: Path, qwen2_adapter: Path, tmp_path: Path) -> None:
    report = _export(qwen2_adapter, qwen2_base, tmp_path / "out")
    assert report["adapter_gguf"]["architecture"] == "qwen2"
    assert report["logits"]["f16_base"]["top1_agreement"] >= 0.99
    assert report["adapter_effect"]["top1_agreement"] < 0.9


# -- merged route -----------------------------------------------------------------------------------------
def test_merged_route_qwen2_quantizes_and_keeps_metadata(qwen2_base: Path, qwen2_adapter: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = _export(qwen2_adapter, qwen2_base, out, route="merged", quants=("q8_0", "q4_k_m"))
    f16 = report["logits"]["f16"]
    assert f16["passed"] and f16["tokenization_mismatches"] == [] and f16["perplexity"] > 1
    # transformers' Qwen2 tokenizer class imposes Qwen2's split regex, recognised here as llama.cpp's qwen2.
    assert report["model_gguf"]["tokenizer_pre"] == "qwen2"
    for quant in ("q8_0", "q4_k_m"):
        entry = report["quantized"][quant]
        assert entry["perplexity_ratio"] > 0 and entry["generated"]  # loads, scores and generates
        meta = read_gguf_metadata(out / f"model-{quant}.gguf")
        assert meta[PROMPT_FORMAT_METADATA_KEY] == PROMPT_FORMAT_VERSION
        assert meta["devstral_elixir.export.route"] == "merged"
    # 32-wide rows cannot take K-quants: llama.cpp's fallback is counted, not hidden.
    assert report["quantized"]["q4_k_m"]["fallback_tensors"] > 0
    assert report["quantized"]["q4_k_m"]["perplexity_target"] == 1.05
    reader = gguf.GGUFReader(out / "model-f16.gguf")
    types = {tensor.name: tensor.tensor_type for tensor in reader.tensors}
    assert types["blk.0.attn_q.bias"] == gguf.GGMLQuantizationType.F32
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F16
    assert "output.weight" not in types  # tied embeddings: llama.cpp reuses token_embd


def test_merged_bf16_stores_the_rounded_permuted_weights(llama_base: Path, llama_adapter: Path, tmp_path: Path) -> None:
    """BF16 is checked tensor by tensor: llama.cpp's CPU BF16 products also round activations to BF16, which on
    this near-uniform random model flips enough near-ties to make a logit gate flaky."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from finetune.export.gguf_names import permute_rows_for_rope

    _export(llama_adapter, llama_base, tmp_path / "out", route="merged", outtype="bf16", verify=False)
    reader = gguf.GGUFReader(tmp_path / "out" / "model-bf16.gguf")
    assert reader.fields["general.file_type"].contents() == int(gguf.LlamaFileType.MOSTLY_BF16)
    assert "llama.attention.key_length" not in reader.fields  # head_dim == hidden / heads here
    assert reader.fields["llama.rope.dimension_count"].contents() == 8
    stored = {tensor.name: tensor for tensor in reader.tensors}
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(llama_base), str(llama_adapter)).merge_and_unload()
    q = merged.model.layers[1].self_attn.q_proj.weight.detach()
    expected = permute_rows_for_rope(q, 4).to(torch.bfloat16).float().numpy()
    assert stored["blk.1.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.BF16
    got = gguf.quants.dequantize(stored["blk.1.attn_q.weight"].data, gguf.GGMLQuantizationType.BF16)
    assert (got == expected).all()
    norm = gguf.quants.dequantize(stored["blk.1.attn_norm.weight"].data, stored["blk.1.attn_norm.weight"].tensor_type)
    assert stored["blk.1.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert (norm == merged.model.layers[1].input_layernorm.weight.detach().numpy()).all()


def test_key_length_is_written_when_head_dim_differs(tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    from finetune.export.merged import write_model_gguf
    from finetune.export.metadata import BaseIdentity, ExportMetadata

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64)
    model = LlamaForCausalLM(config)
    metadata = ExportMetadata(route="merged", base=BaseIdentity("tiny", "0" * 64, "file"))
    write_model_gguf(model, tmp_path / "m.gguf", metadata, tokenizer=tokenizer)
    fields = gguf.GGUFReader(tmp_path / "m.gguf").fields
    assert fields["llama.attention.key_length"].contents() == 16
    assert fields["llama.attention.value_length"].contents() == 16
    assert fields["llama.rope.dimension_count"].contents() == 16


# -- command line, run card, atomic output ----------------------------------------------------------------
def _run_dir(root: Path, base: Path, adapter: Path) -> Path:
    run = root / "runs" / "tiny"
    shutil.copytree(adapter, run / "stage2" / "adapter")
    card = {
        "config": {"name": "tiny", "model": {"base": str(base)}, "lora": {"rank": 4, "alpha": 8}},
        "config_digest": "c0ffee",
        "prompt_format": PROMPT_FORMAT_VERSION,
        "stages": [
            {"stage": 1, "steps": 3, "train_loss": 2.5, "heldout_loss": 2.0, "heldout_perplexity": 7.39,
             "adapter": str(run / "stage1" / "adapter"), "data_digest": "d1"},
            {"stage": 2, "steps": 2, "train_loss": 1.5, "heldout_loss": 1.0, "heldout_perplexity": 2.72,
             "adapter": str(run / "stage2" / "adapter"), "data_digest": "d2"},
        ],
    }
    (run / "run_card.json").write_text(json.dumps(card))
    return run


def test_cli_export_from_a_run_records_metadata_and_run_card(
    llama_base: Path, llama_adapter: Path, tmp_path: Path
) -> None:
    run = _run_dir(tmp_path, llama_base, llama_adapter)
    heldout = Path(__file__).resolve().parents[2] / "examples" / "lib"
    result = CliRunner().invoke(app, ["export", "--run", str(run), "--route", "merged", "--quant", "q8_0",
                                      "--heldout", str(heldout), "--threads", "1"])
    assert result.exit_code == 0, result.output
    out = run / "export-merged"
    assert sorted(p.name for p in out.iterdir()) == ["export_report.json", "model-f16.gguf", "model-q8_0.gguf"]
    meta = read_gguf_metadata(out / "model-q8_0.gguf")
    assert list(meta["devstral_elixir.run.stages"]) == [1, 2]
    assert list(meta["devstral_elixir.run.data_digests"]) == ["d1", "d2"]
    assert json.loads(meta["devstral_elixir.run.metrics"])["stage2"]["heldout_perplexity"] == 2.72
    assert meta["devstral_elixir.base.digest_of"] == "config+weights-manifest"
    card = json.loads((run / "run_card.json").read_text())
    exported = card["exports"]["merged"]
    assert exported["out"] == str(out) and exported["logits"]["f16"]["passed"]
    assert exported["quantized"]["q8_0"]["perplexity_ratio"] > 0


def test_cli_refuses_bad_input_naming_it(llama_base: Path, llama_adapter: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    out.mkdir()
    common = ["export", "--adapter", str(llama_adapter), "--base", str(llama_base), "--out", str(out)]
    result = runner.invoke(app, common)
    assert result.exit_code == 2 and "--overwrite" in result.output
    result = runner.invoke(app, [*common, "--overwrite", "--route", "merged", "--quant", "q3_x"])
    assert result.exit_code == 2 and "q3_x" in result.output
    result = runner.invoke(app, [*common, "--overwrite", "--quant", "q8_0"])
    assert result.exit_code == 2 and "merged route" in result.output
    result = runner.invoke(app, ["export", "--adapter", str(tmp_path), "--base", str(llama_base), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "adapter_config.json" in result.output
    result = runner.invoke(app, ["export", "--run", str(tmp_path)])
    assert result.exit_code == 2 and "run_card.json" in result.output


def test_a_failure_leaves_the_previous_export_untouched(
    llama_base: Path, llama_adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    _export(llama_adapter, llama_base, out, route="merged", verify=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken_quantize(*_args: object, **_kwargs: object) -> dict:
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipeline, "quantize_gguf", broken_quantize)
    with pytest.raises(RuntimeError, match="disk full"):
        _export(llama_adapter, llama_base, out, route="merged", quants=("q8_0",), overwrite=True, verify=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left behind
