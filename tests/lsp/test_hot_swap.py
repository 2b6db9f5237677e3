"""The hot swap's logic (lsp.hotswap) on a hand-written registry, with a deterministic fake backend.

The real server, model and adapter are exercised in tests/e2e/test_hot_swap.py; here every decision is
checked exactly: what is loaded, when, what is closed after what, and what is reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import pytest

from lsp.backends.base import BackendError, BackendInfo, GenerationParams, GenerationResult
from lsp.completion.engine import CompletionEngine
from lsp.config import ModelSettings, Settings
from lsp.documents import Document, Position
from lsp.hotswap import ModelManager, load_key, pin_argument, registry_root, target_version
from lsp.models import ModelSpec, file_sha256, plan_model
from lsp.prompt import PROMPT_FORMAT_VERSION, Prompt, Segment
from lsp.registry import RegistryError, VersionManifest, channel_file

URI = "file:///w/lib/a.ex"
TEXT = "defmodule A do\n  def f(x) do\n    x\n  end\nend\n"


class FakeBackend:
    """Answers with its own name; `gates[name]` holds a generation until set; records calls in `events`."""

    def __init__(self, spec: ModelSpec, events: list[str], gates: dict[str, threading.Event]):
        self.spec = spec
        self.name = spec.version.id if spec.version is not None else "base"
        self.events = events
        self.gates = gates
        self.closed = False

    def info(self) -> BackendInfo:
        return BackendInfo("fake", self.name, None, 4096)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 1

    def generate(self, prompt, params, should_stop, cancel) -> GenerationResult:
        assert not self.closed, f"{self.name} used after close"
        self.events.append(f"{self.name}:generate")
        gate = self.gates.get(self.name)
        if gate is not None:
            assert gate.wait(10)
        self.events.append(f"{self.name}:done")
        return GenerationResult(text=f"{self.name}_answer", stop_reason="eos")

    def prefill(self, prompt, cancel) -> GenerationResult:
        return GenerationResult(text="", stop_reason="prefill")

    def close(self) -> None:
        self.events.append(f"{self.name}:close")
        self.closed = True


class Harness:
    """A manager on a real CompletionEngine, a registry folder, and what was built, shown and logged."""

    def __init__(self, tmp: Path):
        self.base = tmp / "base.gguf"
        self.base.write_bytes(b"GGUF" + os.urandom(4096))
        self.root = tmp / "registry"
        (self.root / "versions").mkdir(parents=True)
        (self.root / "channels").mkdir()
        (self.root / "registry.json").write_text('{"format": 1}')
        self.events: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.failing: set[str] = set()
        self.built: list[ModelSpec] = []
        self.shown: list[tuple[str, str]] = []
        self.logged: list[tuple[str, str]] = []
        self.engine = CompletionEngine(Settings())
        self.manager = ModelManager(
            self.engine, lambda *m: self.shown.append(m), lambda *m: self.logged.append(m), self.create
        )

    def create(self, settings: ModelSettings, spec: ModelSpec) -> FakeBackend:
        self.built.append(spec)
        if spec.version is not None and spec.version.id in self.failing:
            raise BackendError(f"llama.cpp rejected {spec.lora_path}")
        return FakeBackend(spec, self.events, self.gates)

    def settings(self, **overrides) -> ModelSettings:
        return ModelSettings(path=str(self.base), registry=str(self.root), **overrides)

    def add(self, vid: str, kind: str = "adapter", **fields) -> VersionManifest:
        folder = self.root / "versions" / vid
        folder.mkdir()
        entry = "adapter.gguf" if kind == "adapter" else "model.gguf"
        (folder / entry).write_bytes(b"GGUF" + vid.encode())
        manifest = VersionManifest(
            **{
                "id": vid,
                "kind": kind,
                "entry": entry,
                "files": {entry: {"sha256": "0" * 64, "bytes": 4 + len(vid)}},
                "prompt_format": PROMPT_FORMAT_VERSION,
                "base_name": self.base.name,
                "base_sha256": file_sha256(self.base),
                **fields,
            }
        )
        (folder / "manifest.json").write_text(json.dumps(manifest.as_json()))
        return manifest

    def promote(self, vid: str | None, channel: str = "stable") -> None:
        """Replace the channel file as the registry does (a new file renamed over the old)."""
        path = channel_file(self.root, channel)
        temporary = path.with_name(f".{path.name}.{time.monotonic_ns()}")
        temporary.write_text(json.dumps({"version": vid, "history": [], "changed_at": str(time.time_ns())}))
        os.replace(temporary, path)

    async def settle(self) -> None:
        """Let the model worker run everything queued so far (closes included)."""
        await self.engine.run_in_worker(lambda: None)

    @property
    def serving(self) -> str:
        assert self.engine.backend is not None
        return self.engine.backend.name  # type: ignore[attr-defined]

    def errors(self) -> list[str]:
        return [message for level, message in self.shown if level == "error"]


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def _prompt() -> Prompt:
    return Prompt((Segment("def f"),))


async def test_without_a_registry_the_base_is_served_as_before(h: Harness):
    await h.manager.configure(ModelSettings(path=str(h.base)), None)
    assert h.serving == "base"
    assert h.built == [ModelSpec(h.base)]
    assert h.manager.registry_status() == {
        "root": None,
        "channel": "stable",
        "activeVersion": None,
        "pinned": None,
        "loading": False,
        "lastError": None,
    }
    await h.manager.poll()
    assert len(h.built) == 1 and h.shown == []


async def test_the_same_settings_arriving_during_the_load_do_not_load_twice(h: Harness):
    """Neovim 0.8+ sends `workspace/didChangeConfiguration` right after start, while the model loads."""
    settings = ModelSettings(path=str(h.base))
    await asyncio.gather(h.manager.configure(settings, None), h.manager.configure(settings, None))
    assert h.built == [ModelSpec(h.base)]
    await h.manager.configure(ModelSettings(path=str(h.base), threads=3), None)  # a setting the load uses
    assert len(h.built) == 2


async def test_an_empty_channel_serves_the_base(h: Harness):
    await h.manager.configure(h.settings(), None)
    assert h.serving == "base" and h.manager.active is None
    assert h.manager.registry_status()["root"] == str(h.root)


async def test_a_channel_change_swaps_to_the_adapter_on_the_served_base(h: Harness):
    await h.manager.configure(h.settings(), None)
    base = h.engine.backend
    v1 = h.add("aaaa000000000001")
    h.promote(v1.id)
    await h.manager.poll()
    assert h.serving == v1.id
    assert h.built[-1] == ModelSpec(h.base, h.root / "versions" / v1.id / "adapter.gguf", v1)
    assert h.manager.registry_status()["activeVersion"] == v1.id
    await h.settle()
    assert base.closed  # type: ignore[union-attr]
    assert any(f"serving version {v1.id} (adapter); was the base model" in m for _, m in h.logged)
    assert h.shown == []


async def test_status_lists_the_versions_for_a_picker_only_when_asked(h: Harness):
    await h.manager.configure(h.settings(), None)
    assert "versions" not in h.manager.registry_status()
    assert h.manager.registry_status(with_versions=True)["versions"] == []
    old = h.add("aaaa000000000001", created_at="2026-11-01T10:00:00Z", run_name="stage1")
    new = h.add("bbbb000000000002", kind="model", created_at="2026-11-02T10:00:00Z")
    (h.root / "versions" / ".cccc000000000003-partial").mkdir()  # a version still being written
    h.promote(old.id)
    listed = h.manager.registry_status(with_versions=True)
    assert [v["id"] for v in listed["versions"]] == [new.id, old.id]  # newest first
    assert listed["versions"][1] == {"id": old.id, "kind": "adapter", "runName": "stage1",
                                     "createdAt": "2026-11-01T10:00:00Z", "promptFormat": PROMPT_FORMAT_VERSION,
                                     "baseName": h.base.name}
    assert (listed["channelVersion"], listed["channelHistory"], listed["versionsError"]) == (old.id, [], None)
    (h.root / "versions" / new.id / "manifest.json").write_text("{not json")
    broken = h.manager.registry_status(with_versions=True)
    assert broken["versions"] == [] and new.id in broken["versionsError"]


async def test_an_unchanged_signature_does_nothing(h: Harness):
    h.add("aaaa000000000001")
    h.promote("aaaa000000000001")
    await h.manager.configure(h.settings(), None)
    assert h.serving == "aaaa000000000001"
    for _ in range(3):
        await h.manager.poll()
    assert len(h.built) == 1


async def test_a_new_signature_naming_the_served_version_does_not_reload(h: Harness):
    h.add("aaaa000000000001")
    h.promote("aaaa000000000001")
    await h.manager.configure(h.settings(), None)
    h.promote("aaaa000000000001")  # rewritten (new inode), same version
    await h.manager.poll()
    assert len(h.built) == 1


async def test_a_pin_wins_over_the_channel_until_released(h: Harness):
    for vid in ("aaaa000000000001", "bbbb000000000002", "cccc000000000003"):
        h.add(vid)
    h.promote("aaaa000000000001")
    await h.manager.configure(h.settings(pin="bbbb"), None)  # a prefix, as typed from `registry list`
    assert h.serving == "bbbb000000000002"
    h.promote("cccc000000000003")
    await h.manager.poll()
    assert h.serving == "bbbb000000000002"

    status = await h.manager.pin_version(None)  # follow the channel again
    assert h.serving == "cccc000000000003"
    assert status["pinned"] is None and status["activeVersion"] == "cccc000000000003"

    status = await h.manager.pin_version("aaaa")
    assert h.serving == "aaaa000000000001"
    assert status["pinned"] == "aaaa000000000001" and status["activeVersion"] == "aaaa000000000001"


async def test_pinning_an_unknown_version_is_an_error_naming_it_and_changes_nothing(h: Harness):
    h.add("aaaa000000000001")
    h.promote("aaaa000000000001")
    await h.manager.configure(h.settings(), None)
    with pytest.raises(RegistryError, match="'ffff'"):
        await h.manager.pin_version("ffff")
    assert h.manager.pin == "" and h.serving == "aaaa000000000001" and len(h.built) == 1


async def test_pinning_a_version_that_cannot_load_is_an_error_and_changes_nothing(h: Harness):
    h.add("aaaa000000000001")
    h.add("bbbb000000000002")
    h.failing.add("bbbb000000000002")
    h.promote("aaaa000000000001")
    await h.manager.configure(h.settings(), None)
    with pytest.raises(BackendError, match="rejected"):
        await h.manager.pin_version("bbbb000000000002")
    assert h.manager.pin == "" and h.serving == "aaaa000000000001"
    assert h.shown == []  # the requester has the error; no message box as well


async def test_in_flight_generation_finishes_on_the_old_backend_which_is_closed_after_it(h: Harness):
    await h.manager.configure(h.settings(), None)
    old = h.engine.backend
    h.gates["base"] = threading.Event()
    in_flight = asyncio.create_task(
        h.engine.generate_text(_prompt(), GenerationParams(), lambda text: False, threading.Event())
    )
    while "base:generate" not in h.events:
        await asyncio.sleep(0.005)

    h.add("aaaa000000000001")
    h.promote("aaaa000000000001")
    await h.manager.poll()  # loads beside the busy worker and swaps while the old call still runs
    assert h.serving == "aaaa000000000001"
    assert not in_flight.done() and not old.closed  # type: ignore[union-attr]

    after = asyncio.create_task(
        h.engine.generate_text(_prompt(), GenerationParams(), lambda text: False, threading.Event())
    )
    h.gates["base"].set()
    assert (await in_flight).text == "base_answer"
    assert (await after).text == "aaaa000000000001_answer"
    assert h.events == [
        "base:generate",
        "base:done",
        "base:close",
        "aaaa000000000001:generate",
        "aaaa000000000001:done",
    ]


async def test_an_in_flight_completion_is_answered_but_not_cached_across_a_swap(h: Harness):
    await h.manager.configure(h.settings(), None)
    h.engine.documents[URI] = Document(URI, TEXT, 1)
    h.engine.settings.completion.speculative = False
    h.gates["base"] = threading.Event()
    request = asyncio.create_task(h.engine.complete(URI, Position(2, 5), invoked=True))
    while "base:generate" not in h.events:
        await asyncio.sleep(0.005)
    h.add("aaaa000000000001")
    h.promote("aaaa000000000001")
    await h.manager.poll()
    h.gates["base"].set()
    completion = await request
    assert completion is not None and completion.text == "base_answer"
    again = await h.engine.complete(URI, Position(2, 5), invoked=True)
    assert again is not None and again.source == "model" and again.text == "aaaa000000000001_answer"


async def test_a_failed_load_keeps_the_old_model_and_is_reported_once(h: Harness):
    for vid in ("aaaa000000000001", "bbbb000000000002", "cccc000000000003"):
        h.add(vid)
    h.failing.add("bbbb000000000002")
    h.promote("aaaa000000000001")
    await h.manager.configure(h.settings(), None)

    h.promote("bbbb000000000002")
    await h.manager.poll()
    assert h.serving == "aaaa000000000001"
    assert len(h.errors()) == 1
    assert "bbbb000000000002" in h.errors()[0] and "Still serving the previous model" in h.errors()[0]
    status = h.manager.registry_status()
    assert status["activeVersion"] == "aaaa000000000001" and "rejected" in status["lastError"]

    h.promote("bbbb000000000002")  # promoted again: a new signature, the same failure
    await h.manager.poll()
    assert len(h.errors()) == 1 and h.serving == "aaaa000000000001"

    h.promote("cccc000000000003")  # a later good version loads normally
    await h.manager.poll()
    assert h.serving == "cccc000000000003"
    assert h.manager.registry_status()["lastError"] is None
    await h.settle()
    assert "aaaa000000000001:close" in h.events


async def test_an_adapter_for_another_base_or_prompt_format_is_a_failed_load(h: Harness):
    h.add("aaaa000000000001")
    h.add("bbbb000000000002", base_sha256="f" * 64, base_name="other.gguf")
    h.add("cccc000000000003", prompt_format="devstral-elixir-prompt/0")
    h.promote("aaaa000000000001")
    await h.manager.configure(h.settings(), None)
    for vid, reason in (("bbbb000000000002", "other.gguf"), ("cccc000000000003", "prompt format")):
        h.promote(vid)
        await h.manager.poll()
        assert h.serving == "aaaa000000000001"
        assert vid in h.errors()[-1] and reason in h.errors()[-1]
    assert len(h.errors()) == 2
    assert len(h.built) == 1  # refused before anything was loaded


async def test_rollback_swaps_back_to_the_older_version(h: Harness):
    h.add("aaaa000000000001")
    h.add("bbbb000000000002")
    h.promote("aaaa000000000001")
    await h.manager.configure(h.settings(), None)
    h.promote("bbbb000000000002")
    await h.manager.poll()
    assert h.serving == "bbbb000000000002"
    h.promote("aaaa000000000001")  # what `finetune registry rollback` leaves in the channel file
    await h.manager.poll()
    assert h.serving == "aaaa000000000001"
    h.promote(None)  # rolled back past the first promotion: the base again
    await h.manager.poll()
    assert h.serving == "base"
    await h.settle()
    assert [e for e in h.events if e.endswith(":close")] == [
        "aaaa000000000001:close",
        "bbbb000000000002:close",
        "aaaa000000000001:close",
    ]


async def test_a_version_of_kind_model_replaces_the_base(h: Harness):
    v = h.add("aaaa000000000001", kind="model", base_sha256="")
    h.promote(v.id)
    await h.manager.configure(h.settings(), None)
    assert h.built[-1] == ModelSpec(h.root / "versions" / v.id / "model.gguf", None, v)


async def test_a_broken_base_turns_completions_off(h: Harness, tmp_path: Path):
    h.add("aaaa000000000001")
    h.promote("aaaa000000000001")
    missing = tmp_path / "missing.gguf"
    await h.manager.configure(ModelSettings(path=str(missing), registry=str(h.root)), None)
    assert h.engine.backend is None
    assert str(missing) in (h.manager.model_error or "")
    assert len(h.errors()) == 2  # the version (its base is missing), then the base itself
    assert "Completions are off" in h.errors()[-1]


async def test_base_settings_changes_reload_registry_choice_changes_do_not(h: Harness):
    h.add("aaaa000000000001")
    h.promote("aaaa000000000001")
    await h.manager.configure(h.settings(), None)
    await h.manager.configure(h.settings(registry_poll_ms=50), None)
    assert len(h.built) == 1
    await h.manager.configure(h.settings(n_ctx=2048), None)
    assert len(h.built) == 2 and h.serving == "aaaa000000000001"
    assert load_key(h.settings(pin="x", channel="beta")) == load_key(h.settings())


async def test_the_watcher_follows_the_channel(h: Harness):
    h.add("aaaa000000000001")
    await h.manager.configure(h.settings(registry_poll_ms=50), None)
    h.manager.start_watching()
    try:
        h.promote("aaaa000000000001")
        for _ in range(200):
            if h.manager.active is not None:
                break
            await asyncio.sleep(0.01)
        assert h.serving == "aaaa000000000001"
    finally:
        h.manager.close()


def test_registry_root_and_target_version(tmp_path: Path):
    assert registry_root(ModelSettings(), tmp_path) is None
    assert registry_root(ModelSettings(registry="models/reg"), tmp_path) == tmp_path / "models/reg"
    assert registry_root(ModelSettings(registry="~/reg"), tmp_path) == Path.home() / "reg"
    h = Harness(tmp_path)
    assert target_version(h.root, "stable", "") is None
    h.add("aaaa000000000001")
    h.promote("aaaa000000000001", channel="beta")
    assert target_version(h.root, "stable", "") is None
    assert target_version(h.root, "beta", "").id == "aaaa000000000001"  # type: ignore[union-attr]
    with pytest.raises(RegistryError, match="'zz'"):
        target_version(h.root, "beta", "zz")


def test_plan_model_checks_the_served_base_by_hash(tmp_path: Path):
    h = Harness(tmp_path)
    v = h.add("aaaa000000000001")
    settings = h.settings()
    assert plan_model(settings, h.root, None) == ModelSpec(h.base)
    assert plan_model(settings, h.root, v).lora_path == h.root / "versions" / v.id / "adapter.gguf"
    h.base.write_bytes(b"GGUF" + b"another base")  # the file changed: hashed again, no longer a match
    with pytest.raises(BackendError, match="not for the served base"):
        plan_model(settings, h.root, v)
    with pytest.raises(BackendError, match="llama_cpp backend"):
        plan_model(ModelSettings(backend="openai_compat"), h.root, v)


def test_pin_argument():
    assert pin_argument([]) is None
    assert pin_argument(None) is None
    assert pin_argument([None]) is None
    assert pin_argument(["abc"]) == "abc"
    assert pin_argument([{"version": "abc"}]) == "abc"
    assert pin_argument([{"version": None}]) is None
    assert pin_argument([3]) == 3  # refused by pin_version, below


async def test_a_version_that_is_not_a_string_is_refused(h: Harness):
    await h.manager.configure(h.settings(), None)
    with pytest.raises(RegistryError, match="string"):
        await h.manager.pin_version(3)  # type: ignore[arg-type]
