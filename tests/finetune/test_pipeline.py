"""`finetune collect` → `finetune build` through the real CLI: a Mix project with a dependency, a book,
the Debian OTP sources and Elixir's BEAM docs; three stages out, with the card, provenance, filters,
decontamination, resumability and atomic replacement."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsp.prompt import PROMPT_FORMAT_VERSION

pytestmark = pytest.mark.slow

FAKE_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"

CART = '''defmodule Shop.Cart do
  @moduledoc "A shopping cart."

  alias Shop.Item

  @doc "The total price of the cart's items, in cents."
  @spec total([Item.t()]) :: non_neg_integer()
  def total(items) do
    items
    |> Enum.map(fn item -> item.price * item.quantity end)
    |> Enum.sum()
  end

  @doc "Items that cost more than `limit`."
  def expensive(items, limit) do
    items |> Enum.filter(&(&1.price > limit)) |> Enum.count()
  end

  def labels(items) do
    Enum.map(items, & &1.name) |> Enum.join(", ")
  end

  def empty?(items), do: length(items) == 0
end
'''

CART_TEST = '''defmodule Shop.CartTest do
  use ExUnit.Case, async: true

  alias Shop.Cart

  test "total sums price times quantity" do
    assert Cart.total([%{price: 2, quantity: 3}, %{price: 5, quantity: 1}]) == 11
  end

  test "labels joins the names" do
    assert Cart.labels([%{name: "a"}, %{name: "b"}]) == "a, b"
  end
end
'''

CONFIG = f'''import Config

config :shop, github_token: "{FAKE_TOKEN}"
config :shop, greeting: "hello"
'''

# A function copied from an evaluation problem: decontamination must drop the file that holds it.
CONTAMINATED = '''defmodule Shop.Palindrome do
  def palindrome?(text) do
    normalized = text |> String.downcase() |> String.replace(~r/[^a-z0-9]/, "")
    normalized == String.reverse(normalized) and String.length(normalized) > 0
  end
end
'''
PROBLEM = {
    "name": "HumanEval_elixir_palindrome",
    "prompt": "defmodule Shop.Palindrome do\n  def palindrome?(text) do\n",
    "canonical_solution": '    normalized = text |> String.downcase() |> String.replace(~r/[^a-z0-9]/, "")\n'
    "    normalized == String.reverse(normalized) and String.length(normalized) > 0\n  end\nend\n",
    "tests": "ExUnit.start()\n",
}

BOOK = """# Chapter 1: Pattern matching

Elixir's `=` is the match operator.

## Matching tuples

A tuple matches when its shape does:

```elixir
{:ok, value} = {:ok, 42}
```

Try it in IEx:

```
iex> {:ok, value} = {:ok, 42}
{:ok, 42}
iex> value
42
```

# Chapter 2: Pipes

## The pipe operator

The pipe passes the value on the left as the first argument:

```elixir
"hello" |> String.upcase() |> String.reverse()
```

Exercise: write a function that doubles every number in a list.

```elixir
def double_all(list), do: Enum.map(list, &(&1 * 2))
```
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pipeline")
    shop = root / "shop"
    _write(shop / "mix.exs", 'defmodule Shop.MixProject do\n  use Mix.Project\n  def project, do: [app: :shop, version: "0.3.0", package: [licenses: ["MIT"]]]\nend\n')
    _write(shop / "lib" / "shop" / "cart.ex", CART)
    _write(shop / "lib" / "shop" / "palindrome.ex", CONTAMINATED)
    _write(shop / "test" / "shop" / "cart_test.exs", CART_TEST)
    _write(shop / "config" / "config.exs", CONFIG)
    _write(shop / ".gitignore", "/secret_notes/\n")
    _write(shop / "secret_notes" / "draft.ex", "defmodule Draft do\nend\n")
    dep = shop / "deps" / "tiny_json"
    _write(dep / "mix.exs", 'defmodule TinyJson.MixProject do\n  use Mix.Project\n  def project, do: [app: :tiny_json, version: "1.2.0"]\nend\n')
    _write(dep / "LICENSE", "                                 Apache License\n                           Version 2.0, January 2004\n")
    _write(dep / "lib" / "tiny_json.ex", "defmodule TinyJson do\n  def encode(nil), do: \"null\"\n  def encode(true), do: \"true\"\n  def encode(n) when is_integer(n), do: Integer.to_string(n)\nend\n")
    _write(root / "book" / "elixir_basics.md", BOOK)
    _write(root / "problems.jsonl", json.dumps(PROBLEM) + "\n")
    return root


def finetune(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finetune.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def _samples(folder: Path) -> list[dict]:
    return [json.loads(line) for shard in sorted(folder.glob("part-*.jsonl")) for line in shard.open()]


@pytest.fixture(scope="module")
def built(workspace: Path) -> Path:
    collects = [
        ("local", str(workspace / "shop")),
        ("books", str(workspace / "book" / "elixir_basics.md"), "--licence", "CC0-1.0"),
        ("otp",),
    ]
    if shutil.which("elixir"):
        collects.append(("beam-docs",))
    for command in collects:
        done = finetune("collect", *command, "--out", "raw", cwd=workspace)
        assert done.returncode == 0, done.stderr
    done = finetune(
        "build", "--raw", "raw", "--out", "datasets", "--workers", "2", "--cache", "cache",
        "--eval-problems", "problems.jsonl", cwd=workspace,
    )
    assert done.returncode == 0, done.stderr
    return workspace / "datasets"


def test_three_stages_and_a_card(built: Path):
    card = json.loads((built / "card.json").read_text())
    stage1, stage2, stage3 = (_samples(built / f"stage{n}") for n in (1, 2, 3))
    assert stage1 and stage2 and stage3
    assert card["samples"] == {"1": len(stage1), "2": len(stage2), "3": len(stage3)}
    assert {"local", "books", "otp"} <= set(card["sources"])
    readme = (built / "README.md").read_text()
    assert "## Filters" in readme and "## Tokenizer report" in readme
    for sample in stage1 + stage2 + stage3:
        assert sample["prompt_format"] == PROMPT_FORMAT_VERSION
        assert sample["provenance"]["source"] in {"local", "books", "otp", "beam_docs"}
    tasks = {sample["task"] for sample in stage2}
    assert any(task.startswith("fim") for task in tasks), tasks
    assert any("test" in task for task in tasks), tasks
    assert {sample["task"] for sample in stage3} - {"book_section"}, "the curriculum has exercises, not only text"
    if "beam_docs" in card["sources"]:
        books = {sample["meta"]["book"] for sample in stage3}
        assert "Elixir standard library documentation" in books


def test_provenance_licences_and_gitignore(built: Path):
    stage1 = _samples(built / "stage1")
    by_path = {(s["provenance"]["package"], s["provenance"]["path"]): s for s in stage1}
    assert by_path[("shop", "lib/shop/cart.ex")]["provenance"]["licence"] == "MIT"
    assert by_path[("tiny_json", "lib/tiny_json.ex")]["provenance"]["licence"] == "Apache-2.0"
    assert not any("secret_notes" in path for _pkg, path in by_path), ".gitignore is respected"


def test_secrets_scrubbed_and_contamination_dropped(built: Path):
    everything = "".join((built / f"stage{n}" / name).read_text() for n in (1, 2, 3) for name in
                         [p.name for p in (built / f"stage{n}").glob("part-*.jsonl")])
    assert FAKE_TOKEN not in everything and "<SECRET>" in everything
    assert "palindrome?" not in everything
    card = json.loads((built / "card.json").read_text())
    assert card["secrets"] and card["drops"]["decontaminate"]["eval-overlap"] >= 1
    assert card["contamination"]["HumanEval_elixir_palindrome"] == 1
    # The bundled suites are on by default; these real sources share nothing with them.
    assert card["options"]["bundled_suites"] is True
    assert card["contamination_by_suite"] == {"problems.jsonl": 1, "elixir_core": 0, "fim": 0}


def test_datasets_load_with_hf_datasets(built: Path):
    datasets = pytest.importorskip("datasets", reason="needs the finetune extra (HF datasets)")
    loaded = datasets.load_dataset("json", data_files=str(built / "stage2" / "part-*.jsonl"), split="train")
    assert len(loaded) == len(_samples(built / "stage2"))
    assert {"prompt", "completion", "provenance"} <= set(loaded.column_names)


def test_a_rebuild_resumes_from_the_cache_and_a_failed_build_keeps_the_old(workspace: Path, built: Path):
    before = (built / "card.json").read_text()
    done = finetune("build", "--raw", "raw", "--out", "datasets", "--workers", "1", "--cache", "cache",
                    "--eval-problems", "problems.jsonl", cwd=workspace)
    assert done.returncode == 0, done.stderr
    card = json.loads((built / "card.json").read_text())
    assert card["cache_hits"] >= card["records_in"], "every record's filtering came from the cache"
    assert card["samples"] == json.loads(before)["samples"]
    rebuilt = (built / "card.json").read_text()
    failed = finetune("build", "--raw", "no-such-folder", "--out", "datasets", cwd=workspace)
    assert failed.returncode == 2 and "no-such-folder" in failed.stderr
    assert (built / "card.json").read_text() == rebuilt and _samples(built / "stage1")


def test_collect_reports_bad_inputs_and_keeps_going(workspace: Path, tmp_path: Path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not a pdf")
    done = finetune("collect", "books", str(broken), str(workspace / "book" / "elixir_basics.md"), "--out", str(tmp_path / "raw"), cwd=workspace)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "raw" / "books" / "manifest.json").read_text())
    assert manifest["records"] > 0
    assert any("broken.pdf" in s["where"] for s in manifest["skipped"])


def test_missing_github_token_is_one_clear_error(workspace: Path, tmp_path: Path):
    done = finetune("collect", "github", "--token-env", "NO_SUCH_TOKEN_VARIABLE", "--out", str(tmp_path), cwd=workspace)
    assert done.returncode == 2
    assert "NO_SUCH_TOKEN_VARIABLE" in done.stderr
    assert not (tmp_path / "github").exists(), "no half-written collection"
