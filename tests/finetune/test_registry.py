"""`finetune registry` on tiny GGUF files written here: adding (content addressing, entry and kind), promote
checks, rollback, remove, atomicity under a crash at every rename/fsync/unlink, locking, and the CLI.

Crashes and rivals are real processes: a writer killed with os._exit mid-operation, a stalled writer holding
the lock, two writers racing; the state they leave is read back through the server's reader (lsp.registry).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

gguf = pytest.importorskip("gguf")

from finetune import registry as registry_module  # noqa: E402
from finetune.cli import app  # noqa: E402
from finetune.export.metadata import BaseIdentity, ExportMetadata  # noqa: E402
from finetune.registry import Registry, RegistryError, is_temp_name  # noqa: E402
from lsp.prompt import PROMPT_FORMAT_METADATA_KEY, PROMPT_FORMAT_VERSION  # noqa: E402
from lsp.registry import (  # noqa: E402
    CHANNELS_DIR,
    MANIFEST_FILE,
    REGISTRY_FILE,
    VERSIONS_DIR,
    channel_file,
    channel_signature,
    read_channel,
    read_manifest,
)

REPO = Path(__file__).resolve().parents[2]


# -- building GGUF files and export folders ---------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_gguf(
    path: Path,
    *,
    adapter: bool,
    seed: int,
    base: BaseIdentity | None = None,
    prompt_format: str = PROMPT_FORMAT_VERSION,
    run_name: str = "run",
    metrics: dict | None = None,
) -> Path:
    """A tiny GGUF: two small tensors, general.type, and (with `base`) our export metadata."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type("adapter" if adapter else "model")
    if adapter:
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", 16.0)
    if base is not None:
        route = "adapter" if adapter else "merged"
        ExportMetadata(
            route=route, base=base, prompt_format=prompt_format, run_name=run_name, metrics=metrics or {}
        ).write(writer)
    rng = np.random.default_rng(seed)
    names = (
        ("blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b") if adapter else ("token_embd.weight",)
    )
    for name in names:
        writer.add_tensor(name, rng.standard_normal((4, 8)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def export_folder(folder: Path, files: dict[str, dict], *, extras: tuple[str, ...] = ()) -> Path:
    """A `finetune export`-shaped folder: the GGUFs, export_report.json with their hashes, and extras."""
    folder.mkdir(parents=True)
    for name, spec in files.items():
        write_gguf(folder / name, **spec)
    report = {
        "route": "adapter" if "adapter.gguf" in files else "merged",
        "files": {
            name: {"bytes": (folder / name).stat().st_size, "sha256": sha256(folder / name)} for name in files
        },
    }
    (folder / "export_report.json").write_text(json.dumps(report))
    for name in extras:
        (folder / name).write_text(json.dumps({"name": name}))
    return folder


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """The base GGUF adapters are served on (no metadata of ours, like the embedded model)."""
    return write_gguf(tmp_path / "base.gguf", adapter=False, seed=1000)


def identity(base: Path) -> BaseIdentity:
    return BaseIdentity(base.name, sha256(base), "file")


def adapter_export(tmp_path: Path, base_file: Path, seed: int, **spec: object) -> Path:
    """An adapter export of `base_file` (`spec` overrides: base=, prompt_format=, …)."""
    spec = {"adapter": True, "seed": seed, "base": identity(base_file), **spec}
    return export_folder(tmp_path / f"export-{seed}", {"adapter.gguf": spec})


def temp_entries(root: Path) -> list[str]:
    folders = [root, root / VERSIONS_DIR, root / CHANNELS_DIR]
    return [
        entry.name
        for folder in folders
        if folder.is_dir()
        for entry in folder.iterdir()
        if is_temp_name(entry.name)
    ]


def assert_consistent(root: Path) -> None:
    """What a reader sees is whole: every version folder under an id is complete, every channel points at
    one, registry.json parses."""
    if (root / REGISTRY_FILE).exists():
        assert json.loads((root / REGISTRY_FILE).read_text())["format"] == 1
    for folder in (root / VERSIONS_DIR).iterdir() if (root / VERSIONS_DIR).is_dir() else ():
        if folder.name.startswith("."):
            continue
        manifest = read_manifest(root, folder.name)
        assert manifest.id == folder.name
        assert sorted(p.name for p in folder.iterdir()) == sorted([*manifest.files, MANIFEST_FILE])
        for name, info in manifest.files.items():
            assert sha256(folder / name) == info["sha256"] and (folder / name).stat().st_size == info["bytes"]
    for path in (root / CHANNELS_DIR).glob("*.json") if (root / CHANNELS_DIR).is_dir() else ():
        if not path.name.startswith("."):
            state = read_channel(root, path.stem)
            assert state is not None and state.version is not None
            read_manifest(root, state.version)


# -- add --------------------------------------------------------------------------------------------------


def test_add_registers_an_adapter_export_content_addressed(tmp_path: Path, base: Path) -> None:
    metrics = {"stage3": {"heldout_perplexity": 3.5}}
    source = export_folder(
        tmp_path / "export",
        {
            "adapter.gguf": {
                "adapter": True,
                "seed": 1,
                "base": identity(base),
                "run_name": "r7",
                "metrics": metrics,
            }
        },
        extras=("run_card.json", "eval.json"),
    )
    root = tmp_path / "registry"
    manifest = Registry(root).add(source)

    assert manifest.id == sha256(source / "adapter.gguf")[:16]
    assert (manifest.kind, manifest.entry) == ("adapter", "adapter.gguf")
    assert manifest.prompt_format == PROMPT_FORMAT_VERSION
    assert (manifest.base_name, manifest.base_sha256) == ("base.gguf", sha256(base))
    assert (manifest.run_name, manifest.metrics) == ("r7", metrics)
    assert manifest.source == str(source.resolve())
    assert read_manifest(root, manifest.id) == manifest
    assert set(manifest.files) == {"adapter.gguf", "export_report.json", "run_card.json", "eval.json"}
    assert json.loads((root / REGISTRY_FILE).read_text())["format"] == 1
    assert_consistent(root)
    assert temp_entries(root) == []
    assert (root / VERSIONS_DIR / manifest.id).stat().st_mode & 0o777 == 0o755  # readable by a server's user

    # The same file again — from the folder or on its own — is the same version, untouched.
    again = Registry(root).add(source)
    alone = Registry(root).add(source / "adapter.gguf")
    assert again == manifest and alone == manifest
    assert [m.id for m, _ in Registry(root).list()] == [manifest.id]


def test_add_chooses_the_served_file_and_reads_its_kind(tmp_path: Path, base: Path) -> None:
    merged = {"adapter": False, "base": identity(base)}
    source = export_folder(
        tmp_path / "merged",
        {
            "model-f16.gguf": {**merged, "seed": 2},
            "model-q8_0.gguf": {**merged, "seed": 3},
            "model-q4_k_m.gguf": {**merged, "seed": 4},
        },
    )
    registry = Registry(tmp_path / "registry")
    smallest = registry.add(source)
    assert (smallest.kind, smallest.entry) == ("model", "model-q4_k_m.gguf")
    assert smallest.id == sha256(source / "model-q4_k_m.gguf")[:16]
    named = registry.add(source, file="model-f16.gguf")
    assert named.entry == "model-f16.gguf" and named.id != smallest.id

    only_f16 = export_folder(tmp_path / "f16", {"model-f16.gguf": {**merged, "seed": 5}})
    assert registry.add(only_f16).entry == "model-f16.gguf"

    # Kind comes from the GGUF itself: a stray file name says nothing.
    single = write_gguf(tmp_path / "my-lora.gguf", adapter=True, seed=6, base=identity(base))
    assert registry.add(single).kind == "adapter"
    foreign = write_gguf(tmp_path / "foreign.gguf", adapter=False, seed=7)
    assert registry.add(foreign).prompt_format == ""

    with pytest.raises(RegistryError, match=r"nope\.gguf.*model-f16\.gguf"):
        registry.add(source, file="nope.gguf")
    lying = tmp_path / "lying"
    lying.mkdir()
    write_gguf(lying / "adapter.gguf", adapter=False, seed=8)
    with pytest.raises(RegistryError, match=re.escape("general.type says model")):
        registry.add(lying)
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(RegistryError, match=re.escape("notes.gguf: not a GGUF")):
        registry.add(text)
    with pytest.raises(RegistryError, match="missing-folder: no such file"):
        registry.add(tmp_path / "missing-folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RegistryError, match=re.escape("no adapter.gguf")):
        registry.add(empty)
    with pytest.raises(RegistryError, match="cannot open the registry for writing"):
        Registry(text).add(single)  # a file where the registry folder should be
    assert_consistent(registry.root)


def test_add_refuses_a_gguf_altered_after_export(tmp_path: Path, base: Path) -> None:
    source = adapter_export(tmp_path, base, 9)
    write_gguf(
        source / "adapter.gguf", adapter=True, seed=10, base=identity(base)
    )  # report keeps the old hash
    with pytest.raises(RegistryError, match=re.escape("export_report.json")):
        Registry(tmp_path / "registry").add(source)
    assert not (tmp_path / "registry" / VERSIONS_DIR).exists() or not any(
        (tmp_path / "registry" / VERSIONS_DIR).iterdir()
    )


# -- promote, rollback --------------------------------------------------------------------------------------


def test_promote_and_rollback_keep_a_history(tmp_path: Path, base: Path) -> None:
    root = tmp_path / "registry"
    registry = Registry(root)
    v1, v2, v3 = (registry.add(adapter_export(tmp_path, base, seed)).id for seed in (11, 12, 13))

    state = registry.promote(v1[:6], served_base=base)
    assert (state.version, state.history) == (v1, ())
    recorded = json.loads((root / REGISTRY_FILE).read_text())["served_base"]
    assert recorded == {"path": str(base.resolve()), "sha256": sha256(base), "name": "base.gguf"}
    assert json.loads(channel_file(root, "stable").read_text())["forced"] is False

    # Later promotes check against the recorded base.
    assert registry.promote(v2).history == (v1,)
    signature = channel_signature(root, "stable")
    assert registry.promote(v2).history == (v1,)  # already active: nothing written
    assert channel_signature(root, "stable") == signature
    assert registry.promote(v3).history == (v1, v2)
    assert read_channel(root, "stable").version == v3

    assert (registry.rollback().version, read_channel(root, "stable").history) == (v2, (v1,))
    assert (registry.rollback().version, read_channel(root, "stable").history) == (v1, ())
    with pytest.raises(RegistryError, match=f"'stable' has no earlier version.*active: {v1}"):
        registry.rollback()
    with pytest.raises(RegistryError, match="'canary' was never promoted"):
        registry.rollback("canary")

    # Channels are independent; a path is added first.
    canary = registry.promote(adapter_export(tmp_path, base, 14), "canary")
    assert canary.version not in (v1, v2, v3) and read_channel(root, "stable").version == v1
    assert dict((m.id, channels) for m, channels in registry.list())[canary.version] == ["canary"]
    assert_consistent(root)


def test_promote_refuses_mismatches_unless_forced(tmp_path: Path, base: Path) -> None:
    root = tmp_path / "registry"
    registry = Registry(root)
    good = registry.add(adapter_export(tmp_path, base, 20)).id
    registry.promote(good, served_base=base)

    old_format = registry.add(adapter_export(tmp_path, base, 21, prompt_format="devstral-elixir-prompt/0")).id
    with pytest.raises(RegistryError) as refused:
        registry.promote(old_format)
    assert "devstral-elixir-prompt/0" in str(refused.value) and PROMPT_FORMAT_VERSION in str(refused.value)
    assert old_format in str(refused.value) and "--force" in str(refused.value)

    other = BaseIdentity("other.gguf", "ab" * 32, "file")
    wrong_base = registry.add(adapter_export(tmp_path, base, 22, base=other)).id
    with pytest.raises(RegistryError) as refused:
        registry.promote(wrong_base)
    assert "ab" * 32 in str(refused.value) and sha256(base) in str(refused.value)

    hf_base = BaseIdentity("hf-folder", "cd" * 32, "config+weights-manifest")
    from_hf = registry.add(adapter_export(tmp_path, base, 23, base=hf_base)).id
    with pytest.raises(RegistryError, match="config\\+weights-manifest, not of a GGUF"):
        registry.promote(from_hf)

    foreign = registry.add(write_gguf(tmp_path / "foreign.gguf", adapter=True, seed=24)).id
    with pytest.raises(RegistryError, match=f"no {PROMPT_FORMAT_METADATA_KEY} key"):
        registry.promote(foreign)

    with pytest.raises(RegistryError, match=re.escape("missing.gguf")):
        registry.promote(wrong_base, served_base=tmp_path / "missing.gguf")
    assert read_channel(root, "stable").version == good  # nothing changed on refusal

    forced = registry.promote(wrong_base, force=True)
    assert forced.history == (good,)
    assert json.loads(channel_file(root, "stable").read_text())["forced"] is True

    # A merged model carries its own weights: only its prompt format is checked.
    merged = export_folder(
        tmp_path / "merged", {"model-q8_0.gguf": {"adapter": False, "seed": 25, "base": other}}
    )
    assert registry.promote(merged).version == registry.add(merged).id


def test_base_hash_is_cached_by_path_size_and_mtime(
    tmp_path: Path, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(tmp_path / "registry")
    versions = [registry.add(adapter_export(tmp_path, base, seed)).id for seed in (30, 31, 32)]
    hashed: list[Path] = []
    real = registry_module.sha256_file

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(registry_module, "sha256_file", counting)
    registry.promote(versions[0], served_base=base)
    assert hashed == [base.resolve()]
    registry.promote(versions[1], served_base=base)
    assert hashed == [base.resolve()]  # cached
    os.utime(base, ns=(time.time_ns(), time.time_ns() + 10**9))
    registry.promote(versions[2])
    assert hashed == [base.resolve(), base.resolve()]  # the file changed (mtime): hashed again
    cache = json.loads((registry.root / REGISTRY_FILE).read_text())["sha256_cache"]
    assert cache[str(base.resolve())]["mtime_ns"] == base.stat().st_mtime_ns


@pytest.mark.parametrize("name", ["Stable", "", "-x", "../stable", "a b", "canary.json", "é"])
def test_channel_names_are_checked(tmp_path: Path, base: Path, name: str) -> None:
    registry = Registry(tmp_path / "registry")
    version = registry.add(adapter_export(tmp_path, base, 40)).id
    with pytest.raises(RegistryError, match=re.escape(f"channel name {name!r} is invalid")):
        registry.promote(version, name, served_base=base)
    with pytest.raises(RegistryError, match="is invalid"):
        registry.rollback(name)
    assert registry.promote(version, "canary_2-b", served_base=base).version == version


def test_versions_resolve_by_unique_prefix(tmp_path: Path, base: Path) -> None:
    registry = Registry(tmp_path / "registry")
    ids: list[str] = []
    seed = 50
    while len({i[0] for i in ids}) == len(ids):  # until two ids share their first digit
        ids.append(registry.add(adapter_export(tmp_path, base, seed)).id)
        seed += 1
    shared = ids[-1][0]
    with pytest.raises(RegistryError, match=f"prefix '{shared}' is ambiguous"):
        registry.promote(shared, served_base=base)
    assert registry.promote(ids[-1][:12], served_base=base).version == ids[-1]
    assert registry.show(ids[-1][:12])["manifest"]["id"] == ids[-1]
    for bad in ("*", "zz", ids[-1] + "0"):
        with pytest.raises(RegistryError, match="not a version id"):
            registry.show(bad)
    unknown = next(c for c in "0123456789abcdef" if c not in {i[0] for i in ids})
    with pytest.raises(RegistryError, match=f"no version '{unknown}'"):
        registry.remove(unknown)


# -- remove, list, show ------------------------------------------------------------------------------------


def test_remove_refuses_versions_in_use(tmp_path: Path, base: Path) -> None:
    root = tmp_path / "registry"
    registry = Registry(root)
    v1, v2, v3 = (registry.add(adapter_export(tmp_path, base, seed)).id for seed in (60, 61, 62))
    registry.promote(v1, served_base=base)
    registry.promote(v2)
    registry.promote(v2, "canary")

    with pytest.raises(RegistryError, match="active in canary, stable"):
        registry.remove(v2)
    with pytest.raises(RegistryError, match="in the history of stable"):
        registry.remove(v1)
    registry.remove(v3)
    assert not (root / VERSIONS_DIR / v3).exists() and temp_entries(root) == []
    assert sorted(m.id for m, _ in registry.list()) == sorted([v1, v2])

    registry.remove(v1, force=True)  # the history now names a removed version: rollback says so
    with pytest.raises(RegistryError, match=f"to {v1}: that version was removed"):
        registry.rollback()
    assert_consistent(root)


def test_list_and_show(tmp_path: Path, base: Path) -> None:
    registry = Registry(tmp_path / "registry")
    assert registry.list() == []
    source = export_folder(
        tmp_path / "export",
        {"adapter.gguf": {"adapter": True, "seed": 70, "base": identity(base)}},
        extras=("eval.json",),
    )
    v1 = registry.add(source).id
    time.sleep(0.01)  # listed oldest first (created_at has millisecond resolution)
    v2 = registry.add(adapter_export(tmp_path, base, 71)).id
    registry.promote(v1, served_base=base)
    registry.promote(v2)
    registry.promote(v2, "canary")
    assert [(m.id, channels) for m, channels in registry.list()] == [(v1, []), (v2, ["canary", "stable"])]

    shown = registry.show(v1)
    assert shown["manifest"] == read_manifest(registry.root, v1).as_json()
    assert shown["channels"] == {"active": [], "history": ["stable"]}
    assert shown["export_report"] == json.loads((source / "export_report.json").read_text())
    assert shown["eval"] == {"name": "eval.json"} and shown["run_card"] is None

    (registry.root / REGISTRY_FILE).write_text(json.dumps({"format": 2}))
    with pytest.raises(RegistryError, match=f"{REGISTRY_FILE}: format 2"):
        registry.list()


# -- atomicity under a crash -------------------------------------------------------------------------------

CRASH = r"""
import os, sys
from pathlib import Path
from finetune.registry import Registry

root, op, arg, served_base, limit = sys.argv[1:6]
calls = 0

def crashing(real):
    def call(*args, **kwargs):
        global calls
        calls += 1
        if calls == int(limit):
            os._exit(137)  # killed: no cleanup, no finally
        return real(*args, **kwargs)
    return call

for name in ("replace", "rename", "fsync", "unlink"):
    setattr(os, name, crashing(getattr(os, name)))
registry = Registry(Path(root))
if op == "add":
    registry.add(Path(arg))
elif op == "promote":
    registry.promote(arg, served_base=Path(served_base))
else:
    registry.remove(arg)
"""


def run_python(code: str, *args: object, **popen: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)], cwd=REPO, env=env, text=True, **popen
    )


@pytest.mark.parametrize("op", ["add", "promote", "remove"])
def test_a_crash_at_any_step_leaves_the_old_or_the_new_state(tmp_path: Path, base: Path, op: str) -> None:
    prepared = tmp_path / "prepared"
    source = adapter_export(tmp_path, base, 80)
    v1 = v2 = ""
    if op != "add":
        registry = Registry(prepared)
        v1 = registry.add(adapter_export(tmp_path, base, 81)).id
        v2 = registry.add(source).id
        registry.promote(v1, served_base=base)
    other_base = shutil.copy(base, tmp_path / "same-base-elsewhere.gguf")  # a new path: hashed and recorded

    def state(root: Path) -> object:
        if op == "add":
            return [m.id for m, _ in Registry(root).list()]
        if op == "promote":
            channel = read_channel(root, "stable")
            return channel.version, channel.history
        return (root / VERSIONS_DIR / v2).exists()

    new_id = sha256(source / "adapter.gguf")[:16]
    old, new = {"add": ([], [new_id]), "promote": ((v1, ()), (v2, (v1,))), "remove": (True, False)}[op]
    arg = {"add": source, "promote": new_id[:8], "remove": new_id}[op]

    def complete(registry: Registry) -> None:
        if op == "add":
            registry.add(source)
        elif op == "promote":
            registry.promote(arg, served_base=other_base)
        else:
            registry.remove(arg)

    seen = []
    for limit in range(1, 40):
        root = tmp_path / f"crash-{limit}"
        if prepared.exists():
            shutil.copytree(prepared, root)
        process = run_python(CRASH, root, op, arg, other_base, limit)
        returncode = process.wait(timeout=60)
        assert returncode in (0, 137)
        assert_consistent(root)
        seen.append(state(root))
        assert seen[-1] in (old, new), f"crash at call {limit}: {seen[-1]}"
        if returncode == 0:
            break
        # The next writer removes the leftovers and completes the operation.
        if state(root) == old:
            complete(Registry(root))
        else:  # the crash came after the change was visible: any write will do
            Registry(root).add(source if op == "add" else tmp_path / "export-81")
        assert state(root) == new and temp_entries(root) == []
        assert_consistent(root)
    else:
        pytest.fail("the operation never completed")
    assert seen[0] == old and seen[-1] == new and len(seen) >= 3


# -- locking ----------------------------------------------------------------------------------------------

STALLED = r"""
import os, sys
from pathlib import Path
from finetune.registry import Registry

real = os.replace

def stalled(*args, **kwargs):
    print("stalled", flush=True)
    sys.stdin.readline()
    return real(*args, **kwargs)

os.replace = stalled
Registry(Path(sys.argv[1])).promote(sys.argv[2])
"""


def test_a_writer_waits_for_the_lock_and_names_its_holder(tmp_path: Path, base: Path) -> None:
    root = tmp_path / "registry"
    registry = Registry(root)
    v1, v2, v3 = (registry.add(adapter_export(tmp_path, base, seed)).id for seed in (90, 91, 92))
    registry.promote(v1, served_base=base)

    holder = run_python(STALLED, root, v2, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "stalled"
        started = time.monotonic()
        with pytest.raises(RegistryError) as waited:
            Registry(root, lock_timeout_s=0.3).promote(v3)
        assert time.monotonic() - started >= 0.3
        assert f"pid {holder.pid}" in str(waited.value) and str(root / ".lock") in str(waited.value)
        # Readers take no lock: they see the old state meanwhile.
        assert read_channel(root, "stable").version == v1
        assert sorted(m.id for m, _ in Registry(root).list()) == sorted([v1, v2, v3])
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    assert read_channel(root, "stable").version == v2
    assert Registry(root, lock_timeout_s=0.3).promote(v3).history == (v1, v2)


RIVAL = r"""
import sys, time
from pathlib import Path
from finetune.registry import Registry

root, go, *versions = sys.argv[1:]
registry = Registry(Path(root))
while not Path(go).exists():
    time.sleep(0.002)
for _ in range(4):
    for version in versions:
        registry.promote(version)
"""


def test_concurrent_writers_lose_no_update(tmp_path: Path, base: Path) -> None:
    root = tmp_path / "registry"
    registry = Registry(root)
    v0, v1, v2, v3, v4 = (registry.add(adapter_export(tmp_path, base, seed)).id for seed in range(100, 105))
    registry.promote(v0, served_base=base)
    go = tmp_path / "go"
    rivals = [run_python(RIVAL, root, go, *versions) for versions in ((v1, v3), (v2, v4))]
    go.touch()
    assert [rival.wait(timeout=60) for rival in rivals] == [0, 0]

    state = read_channel(root, "stable")
    sequence = [*state.history, state.version]
    assert len(sequence) == 1 + 16  # every promote recorded the version it replaced
    assert sequence[0] == v0
    assert [v for v in sequence if v in (v1, v3)] == [v1, v3] * 4
    assert [v for v in sequence if v in (v2, v4)] == [v2, v4] * 4
    assert_consistent(root)


# -- the CLI ----------------------------------------------------------------------------------------------


def test_cli(tmp_path: Path, base: Path) -> None:
    root = tmp_path / "registry"
    runner = CliRunner()

    def cli(*args: str, **kwargs: object) -> object:
        return runner.invoke(app, ["registry", *args, "--registry", str(root)], **kwargs)

    good = cli("add", str(adapter_export(tmp_path, base, 110)))
    assert good.exit_code == 0, good.output
    v1 = Registry(root).list()[0][0].id
    assert v1 in good.output
    v2 = Registry(root).add(adapter_export(tmp_path, base, 111, prompt_format="devstral-elixir-prompt/0")).id

    result = cli("promote", v1[:6], "--base", str(base))
    assert result.exit_code == 0 and v1 in result.output
    result = cli("promote", v2)
    assert (
        result.exit_code == 2
        and "registry failed" in result.output
        and "devstral-elixir-prompt/0" in result.output
    )
    result = cli("promote", v2, "--force")
    assert result.exit_code == 0 and read_channel(root, "stable").version == v2

    result = runner.invoke(app, ["registry", "list"], env={"DEVSTRAL_REGISTRY": str(root), "COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "● stable" in rows[v2] and "stable" not in rows[v1] and "adapter" in rows[v1]

    shown = cli("show", v1[:5])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["channels"] == {
        "active": [],
        "history": ["stable"],
    }

    result = cli("remove", v1)
    assert result.exit_code == 2 and "history of stable" in result.output
    result = cli("rollback")
    assert result.exit_code == 0 and read_channel(root, "stable").version == v1
    result = cli("remove", v2)
    assert result.exit_code == 0 and [m.id for m, _ in Registry(root).list()] == [v1]

    for args, named in [
        (("show", "zz9"), "'zz9'"),
        (("promote", v1, "--channel", "Beta"), "'Beta'"),
        (("rollback", "--channel", "canary"), "'canary' was never promoted"),
        (("add", str(tmp_path / "nowhere")), "nowhere: no such file"),
    ]:
        result = cli(*args)
        assert result.exit_code == 2 and "registry failed" in result.output and named in result.output, args
