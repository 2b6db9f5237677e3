from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from finetune.dataset.clean import Drop
from finetune.dataset.dedupe import (
    Deduper,
    ExactDeduper,
    NearDedupeConfig,
    NearDeduper,
    content_digest,
    dedupe,
)
from finetune.records import Provenance, Record

STACK = """defmodule Stack do
  use GenServer

  def start_link(items) when is_list(items) do
    GenServer.start_link(__MODULE__, items, name: __MODULE__)
  end

  def push(item), do: GenServer.cast(__MODULE__, {:push, item})
  def pop, do: GenServer.call(__MODULE__, :pop)
  def peek, do: GenServer.call(__MODULE__, :peek)
  def size, do: GenServer.call(__MODULE__, :size)

  @impl true
  def init(items), do: {:ok, items}

  @impl true
  def handle_call(:pop, _from, [head | tail]), do: {:reply, {:ok, head}, tail}
  def handle_call(:pop, _from, []), do: {:reply, :empty, []}
  def handle_call(:peek, _from, [head | _] = items), do: {:reply, {:ok, head}, items}
  def handle_call(:peek, _from, []), do: {:reply, :empty, []}
  def handle_call(:size, _from, items), do: {:reply, length(items), items}

  @impl true
  def handle_cast({:push, item}, items), do: {:noreply, [item | items]}
end
"""

# Another GenServer: the same boilerplate, different behaviour. It must survive near dedupe.
COUNTER = """defmodule Counter do
  use GenServer

  def start_link(initial) when is_integer(initial) do
    GenServer.start_link(__MODULE__, initial, name: __MODULE__)
  end

  def increment(by \\\\ 1), do: GenServer.cast(__MODULE__, {:increment, by})
  def value, do: GenServer.call(__MODULE__, :value)
  def reset, do: GenServer.cast(__MODULE__, :reset)

  @impl true
  def init(initial), do: {:ok, %{value: initial, initial: initial}}

  @impl true
  def handle_call(:value, _from, state), do: {:reply, state.value, state}

  @impl true
  def handle_cast({:increment, by}, state), do: {:noreply, %{state | value: state.value + by}}
  def handle_cast(:reset, state), do: {:noreply, %{state | value: state.initial}}
end
"""


def rec(text: str, path: str) -> Record:
    return Record("code", "elixir", text, Provenance("github", "someone/repo", "abc123", path, "MIT"))


def test_whitespace_only_differences_are_exact_duplicates() -> None:
    reindented = STACK.replace("  ", "    ").replace("\n", "\r\n") + "\n\n"
    assert content_digest(STACK) == content_digest(reindented)
    deduper = ExactDeduper()
    first = rec(STACK, "lib/stack.ex")
    assert deduper(first) is first
    result = deduper(rec(reindented, "vendor_copy/stack.ex"))
    assert isinstance(result, Drop)
    assert (result.filter, result.reason) == ("dedupe", "exact-duplicate")
    assert result.detail == "same as github:someone/repo@abc123/lib/stack.ex"
    assert deduper.stats.exact_duplicates == 1 and deduper.stats.kept == 1


def test_a_real_change_is_not_an_exact_duplicate() -> None:
    deduper = ExactDeduper()
    deduper(rec(STACK, "a.ex"))
    changed = STACK.replace("{:reply, :empty, []}", "{:reply, {:error, :empty}, []}")
    assert isinstance(deduper(rec(changed, "b.ex")), Record)


def test_lightly_edited_copy_is_a_near_duplicate() -> None:
    edited = "# Copied from the Stack example.\n" + STACK.replace(
        "defmodule Stack do", "defmodule MyApp.Stack do"
    )
    deduper = NearDeduper()
    assert isinstance(deduper(rec(STACK, "lib/stack.ex")), Record)
    result = deduper(rec(edited, "lib/my_app/stack.ex"))
    assert isinstance(result, Drop)
    assert result.reason == "near-duplicate"
    assert "lib/stack.ex" in result.detail
    assert deduper.stats.near_duplicates == 1


def test_files_sharing_boilerplate_are_not_near_duplicates() -> None:
    deduper = NearDeduper()
    assert isinstance(deduper(rec(STACK, "lib/stack.ex")), Record)
    assert isinstance(deduper(rec(COUNTER, "lib/counter.ex")), Record)


def test_the_threshold_is_configurable() -> None:
    half = STACK[: len(STACK) // 2] + COUNTER[len(COUNTER) // 2 :]
    strict = NearDeduper(NearDedupeConfig(threshold=0.85))
    strict(rec(STACK, "a.ex"))
    assert isinstance(strict(rec(half, "b.ex")), Record)
    loose = NearDeduper(NearDedupeConfig(threshold=0.3))
    loose(rec(STACK, "a.ex"))
    assert isinstance(loose(rec(half, "b.ex")), Drop)


def test_tiny_texts_are_never_near_duplicates() -> None:
    deduper = NearDeduper()
    assert isinstance(deduper(rec("def a, do: 1", "a.ex")), Record)
    assert isinstance(deduper(rec("def a, do: 2", "b.ex")), Record)


def test_combined_dedupe_keeps_the_first_of_each_group_in_order() -> None:
    edited = STACK.replace("def peek, do:", "def top, do:")
    records = [
        rec(STACK, "1.ex"),
        rec(COUNTER, "2.ex"),
        rec(STACK, "3.ex"),
        rec(edited, "4.ex"),
        rec(COUNTER + "\n", "5.ex"),
    ]
    results = list(dedupe(records))
    kept = [r.provenance.path for r in results if isinstance(r, Record)]
    reasons = [r.reason for r in results if isinstance(r, Drop)]
    assert kept == ["1.ex", "2.ex"]
    assert reasons == ["exact-duplicate", "near-duplicate", "exact-duplicate"]
    # Same input order, same decisions.
    again = list(dedupe(records))
    assert [type(r) for r in again] == [type(r) for r in results]


def test_stats_count_both_kinds() -> None:
    deduper = Deduper()
    for index, text in enumerate([STACK, STACK, STACK.replace("def peek, do:", "def top, do:"), COUNTER]):
        deduper(rec(text, f"{index}.ex"))
    stats = deduper.stats
    assert (stats.seen, stats.kept, stats.exact_duplicates, stats.near_duplicates) == (4, 2, 1, 1)


def test_many_distinct_records_stream_through_quickly() -> None:
    # Streaming-friendly: 1500 distinct generated modules, none dropped, in well under the test budget.
    rng = random.Random(7)
    words = [f"name_{n}" for n in range(3000)]
    deduper = Deduper()
    for index in range(1500):
        body = "\n".join(
            f"  def {rng.choice(words)}({rng.choice(words)}), do: {rng.choice(words)} + {rng.randint(0, 99)}"
            for _ in range(25)
        )
        result = deduper(rec(f"defmodule M{index} do\n{body}\nend\n", f"m{index}.ex"))
        assert isinstance(result, Record)
    assert deduper.stats.kept == 1500


def test_signatures_are_the_same_in_another_process() -> None:
    # The builder may compute signatures in worker processes; they must not depend on hash seeds.
    here = NearDeduper().signature(STACK)
    assert here is not None
    script = (
        "import sys, json\n"
        "from finetune.dataset.dedupe import NearDeduper\n"
        "print(json.dumps(NearDeduper().signature(sys.stdin.read()).tolist()))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=STACK,
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],  # the repository root, where `finetune` imports from
    )
    assert json.loads(done.stdout) == here.tolist()


def test_a_signature_computed_elsewhere_can_be_passed_in() -> None:
    worker_side = NearDeduper()
    deduper = NearDeduper()
    first = rec(STACK, "a.ex")
    second = rec(STACK.replace("def peek, do:", "def top, do:"), "b.ex")
    assert deduper(first, worker_side.signature(first.text)) is first
    result = deduper(second, worker_side.signature(second.text))
    assert isinstance(result, Drop) and result.reason == "near-duplicate"
