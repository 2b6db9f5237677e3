"""Registry → server, end to end: a running server hot-swaps what `finetune registry` promotes.

The real server over stdio with the real embedded model; adapters for it are written here with `gguf`
(random LoRA matrices, no torch) and registered, promoted and rolled back with `finetune.registry`.
What the server generates is compared with llama-cpp-python's own `Llama(lora_path=...)` run in this
process on the very prompt the server used.

The tests run in file order on one server: each step starts from the state the previous one left.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from typing import Any

import gguf
import llama_cpp
import numpy as np
import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from finetune.export.metadata import BaseIdentity, ExportMetadata
from finetune.registry import Registry
from lsp.driver import to_plain
from lsp.models import embedded_model_path, file_sha256
from lsp.server import PIN_VERSION_COMMAND, PIN_VERSION_REQUEST
from tests.e2e.conftest import SERVER, inline, open_doc, start, status

pytestmark = pytest.mark.slow

BASE = embedded_model_path()
MAX_TOKENS = 8
THREADS = 2
N_CTX = 4096
EVAL_CHUNK = 128  # as the server's backend evaluates prompts (lsp.backends.llama_cpp.EVAL_CHUNK_TOKENS)
TARGETS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
TEXT = (
    "defmodule Shop.Cart do\n"
    '  @moduledoc "A shopping cart."\n'
    "\n"
    "  def total(items) do\n"
    "    items\n"
    "    |> \n"
    "  end\n"
    "end\n"
)
CURSOR = (5, 7)
TMP = Path("/tmp") / f"devstral-elixir-hot-swap-{uuid.uuid4().hex}"


def write_adapter(
    path: Path, base: gguf.GGUFReader, base_sha256: str, seed: int, std: float, broken: bool = False
) -> Path:
    """A LoRA adapter GGUF for the embedded base, as llama.cpp reads them.

    `lora_a` is (r, n_in) and `lora_b` (n_out, r) in numpy's row-major order; GGUF stores ne reversed,
    which is llama.cpp's [n_in, r] and [r, n_out] for a weight of ne [n_in, n_out]. `std` scales lora_b:
    0 gives an adapter that changes nothing (the base's outputs exactly). `broken` makes one lora_a a
    column too wide, which llama.cpp refuses when it loads the adapter.
    """
    architecture = base.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string("adapter.type", "lora")
    rank, alpha = 8, 16.0
    writer.add_float32("adapter.lora.alpha", alpha)
    ExportMetadata(
        route="adapter",
        base=BaseIdentity(BASE.name, base_sha256, "file"),
        run_name=path.stem,
        lora_rank=rank,
        lora_alpha=alpha,
    ).write(writer)
    rng = np.random.default_rng(seed)
    for tensor in base.tensors:
        if not tensor.name.endswith(tuple(f"{t}.weight" for t in TARGETS)):
            continue
        n_in, n_out = (int(n) for n in tensor.shape)
        wide = 1 if broken and tensor.name == "blk.0.attn_q.weight" else 0
        writer.add_tensor(
            f"{tensor.name}.lora_a",
            rng.normal(0, 1 / np.sqrt(n_in), (rank, n_in + wide)).astype(np.float32),
        )
        writer.add_tensor(f"{tensor.name}.lora_b", rng.normal(0, std, (n_out, rank)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def reference(lora: Path | None, segments: list[list[Any]]) -> str:
    """Greedy text from llama-cpp-python itself (its own `lora_path` loading) for the server's prompt,
    evaluated the way the server's backend does it (same chunks, same last-token generation)."""
    llm = llama_cpp.Llama(
        model_path=str(BASE),
        lora_path=str(lora) if lora else None,
        n_ctx=N_CTX,
        n_threads=THREADS,
        n_threads_batch=THREADS,
        n_batch=512,
        verbose=False,
    )
    try:
        tokens = [llm.token_bos()] if llm._model.add_bos_token() else []
        for text, special in segments:
            if text:
                tokens += llm.tokenize(text.encode(), add_bos=False, special=special)
        for start_at in range(0, len(tokens) - 1, EVAL_CHUNK):
            llm.eval(tokens[start_at : min(start_at + EVAL_CHUNK, len(tokens) - 1)])
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        generated: list[int] = []
        for token in llm.generate(tokens[-1:], temp=0.0, top_k=1, repeat_penalty=1.0, reset=False):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            generated.append(token)
            if len(generated) >= MAX_TOKENS:
                break
        return llm.detokenize(generated).decode("utf-8", errors="ignore")
    finally:
        llm.close()


class World:
    """The registry and the adapters registered in it, built once for the module."""

    def __init__(self) -> None:
        TMP.mkdir(parents=True, exist_ok=True)
        sha = file_sha256(BASE)
        base = gguf.GGUFReader(BASE)  # parsing its vocabulary takes seconds: once
        self.adapters = {
            "zero": write_adapter(TMP / "zero.gguf", base, sha, seed=0, std=0.0),
            "a": write_adapter(TMP / "a.gguf", base, sha, seed=1, std=0.05),
            "b": write_adapter(TMP / "b.gguf", base, sha, seed=2, std=0.05),
            "broken": write_adapter(TMP / "broken.gguf", base, sha, seed=3, std=0.05, broken=True),
        }
        self.registry = Registry(TMP / "registry")
        self.ids = {name: self.registry.add(path).id for name, path in self.adapters.items()}
        self.base_text: str | None = None
        self.base_offered = ""
        self.texts: dict[str, str] = {}

    async def promote(self, name: str, force: bool = False) -> None:
        await asyncio.to_thread(self.registry.promote, self.ids[name], served_base=BASE, force=force)


WORLD = World()
URI = f"file:///tmp/{uuid.uuid4().hex}/cart.ex"


@pytest_lsp.fixture(config=SERVER, scope="module")
async def client(lsp_client: LanguageClient):
    lsp_client.init_result = await start(
        lsp_client,
        {
            "model": {"registry": str(WORLD.registry.root), "registryPollMs": 50},
            # Every request reaches the model, nothing runs in the background between them, and only the
            # token count ends a generation (a time budget would cut it short on a busy machine).
            "completion": {
                "debounceMs": 0,
                "maxTokens": MAX_TOKENS,
                "timeBudgetMs": 0,
                "speculative": False,
                "prefill": False,
                "typedAheadCache": False,
            },
        },
    )
    open_doc(lsp_client, URI, TEXT)
    yield
    await lsp_client.shutdown_session()
    shutil.rmtree(TMP, ignore_errors=True)


async def registry_block(client: LanguageClient) -> dict[str, Any]:
    return (await status(client))["registry"]


async def wait_for_version(client: LanguageClient, version: str | None, timeout_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (block := await registry_block(client))["activeVersion"] != version or block["loading"]:
        assert asyncio.get_running_loop().time() < deadline, f"still serving {block}, not {version}"
        await asyncio.sleep(0.05)


async def generate(client: LanguageClient) -> tuple[str, str, list[list[Any]]]:
    """The completion at the fixed cursor: (offered text, raw model text, the prompt's segments)."""
    offered = await inline(client, URI, *CURSOR)
    call = to_plain(await client.protocol.send_request_async("devstralElixir/status", {"withPrompt": True}))[
        "lastModelCall"
    ]
    return offered, call["text"], call["segments"]


async def test_an_empty_channel_serves_the_base(client: LanguageClient):
    commands = client.init_result.capabilities.execute_command_provider.commands  # type: ignore[attr-defined]
    assert PIN_VERSION_COMMAND in commands
    block = await registry_block(client)
    assert block == {
        "root": str(WORLD.registry.root),
        "channel": "stable",
        "activeVersion": None,
        "pinned": None,
        "loading": False,
        "lastError": None,
    }
    offered, raw, segments = await generate(client)
    assert raw and raw == reference(None, segments)[: len(raw)]
    WORLD.base_text, WORLD.base_offered = raw, offered


async def test_a_promoted_zero_adapter_answers_exactly_as_the_base(client: LanguageClient):
    await WORLD.promote("zero")
    await wait_for_version(client, WORLD.ids["zero"])
    _, raw, _ = await generate(client)
    assert raw == WORLD.base_text


async def test_promoting_while_serving_fails_no_request_and_switches_to_the_new_version(
    client: LanguageClient,
):
    before = (await status(client))["requests"]
    answered: list[tuple[str | None, str]] = []  # (version active when asked, offered text)
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def keep_asking() -> None:
        while not stop.is_set():
            version = (await registry_block(client))["activeVersion"]
            try:
                answered.append((version, await inline(client, URI, *CURSOR)))
            except Exception as exc:  # an error response, a broken pipe: all count as failed requests
                failures.append(exc)

    loop = asyncio.create_task(keep_asking())
    while len(answered) < 3:
        await asyncio.sleep(0.02)
    await WORLD.promote("a")
    await wait_for_version(client, WORLD.ids["a"])
    swapped_at = len(answered)
    while len(answered) < swapped_at + 3:
        await asyncio.sleep(0.02)
    stop.set()
    await loop

    assert failures == []
    after = (await status(client))["requests"]
    assert after["errors"] == before["errors"]
    assert after["served"] - before["served"] == len(answered)
    assert {version for version, _ in answered} >= {WORLD.ids["zero"], WORLD.ids["a"]}

    offered, raw, segments = await generate(client)
    assert raw != WORLD.base_text, "the adapter should change the greedy completion"
    assert raw == reference(WORLD.adapters["a"], segments)[: len(raw)]
    assert offered and offered != WORLD.base_offered  # what the editor shows changes too
    WORLD.texts["a"] = raw
    block = await registry_block(client)
    assert block["activeVersion"] == WORLD.ids["a"] and block["lastError"] is None
    assert (await status(client))["model"].endswith("(adapter)")  # the adapter's general.name


async def test_pinning_serves_a_version_regardless_of_the_channel(client: LanguageClient):
    b = WORLD.ids["b"]
    block = to_plain(await client.protocol.send_request_async(PIN_VERSION_REQUEST, {"version": b[:6]}))
    assert block["pinned"] == b and block["activeVersion"] == b
    _, raw, segments = await generate(client)
    assert raw == reference(WORLD.adapters["b"], segments)[: len(raw)]
    assert raw != WORLD.texts["a"]

    # The channel moves while pinned: the pin holds.
    await WORLD.promote("zero")
    await asyncio.sleep(0.3)
    assert (await registry_block(client))["activeVersion"] == b

    # Unknown versions are an error response naming them, and change nothing.
    with pytest.raises(JsonRpcException, match="'f00d'"):
        await client.protocol.send_request_async(PIN_VERSION_REQUEST, {"version": "f00d"})
    assert (await registry_block(client))["pinned"] == b

    # The command form, with null: follow the channel again (now the zero adapter).
    block = to_plain(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=PIN_VERSION_COMMAND, arguments=[None])
        )
    )
    assert block["pinned"] is None and block["activeVersion"] == WORLD.ids["zero"]


async def test_rollback_serves_the_previous_version_again(client: LanguageClient):
    # Channel history: zero, a, zero. Promote a again, then roll back: zero, the base's answers.
    await WORLD.promote("a")
    await wait_for_version(client, WORLD.ids["a"])
    assert (await generate(client))[1] == WORLD.texts["a"]
    await asyncio.to_thread(WORLD.registry.rollback)
    await wait_for_version(client, WORLD.ids["zero"])
    assert (await generate(client))[1] == WORLD.base_text


async def test_a_broken_version_is_reported_once_and_the_old_model_keeps_serving(client: LanguageClient):
    broken = WORLD.ids["broken"]
    await WORLD.promote("broken", force=True)
    for _ in range(400):
        errors = [m for m in client.messages if m.type == types.MessageType.Error]
        if errors:
            break
        await asyncio.sleep(0.05)
    assert len(errors) == 1, errors
    assert broken in errors[0].message and "incorrect shape" in errors[0].message
    block = await registry_block(client)
    assert block["activeVersion"] == WORLD.ids["zero"] and broken in block["lastError"]
    assert (await generate(client))[1] == WORLD.base_text

    await asyncio.sleep(0.3)  # many polls later: still one message
    assert len([m for m in client.messages if m.type == types.MessageType.Error]) == 1

    await asyncio.to_thread(WORLD.registry.rollback)  # back to the served version: nothing to load
    await asyncio.sleep(0.3)
    block = await registry_block(client)
    assert block["activeVersion"] == WORLD.ids["zero"] and block["lastError"] is None
