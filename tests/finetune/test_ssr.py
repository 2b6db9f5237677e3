"""Self-synthesized rehearsal: prompts, parsing, diverse selection, and the whole path with generators."""

from __future__ import annotations

from finetune.train.ssr import (
    Pair,
    SsrOptions,
    demonstrations,
    embed,
    kmeans,
    parse_synthesis,
    rehearsal_rows,
    select_diverse,
    synthesis_prompts,
)

ROWS = [
    {"task": "fim", "prompt": f"def add{i}(a, b), do: ", "completion": "a + b\n"} for i in range(6)
] + [{"task": "iex_eval", "prompt": f"{i} + 1\n", "completion": f"{i + 1}\n"} for i in range(5)] + [
    {"task": "causal", "text": "no prompt: not a task to rehearse"}
]


def test_demonstrations_per_task_are_reproducible():
    options = SsrOptions(examples_per_task=3, seed=1)
    demos = demonstrations(ROWS, options)
    assert set(demos) == {"fim", "iex_eval"} and all(len(d) == 3 for d in demos.values())
    assert demos == demonstrations(ROWS, options)


def test_k_shot_prompts_end_with_an_open_input():
    demos = [Pair("1 + 1\n", "2\n"), Pair("2 + 2\n", "4\n"), Pair("3 + 3\n", "6\n")]
    prompts = synthesis_prompts("iex_eval", demos, shots=2)
    assert len(prompts) == 6, "every ordered choice of two demonstrations"
    assert prompts[0].startswith("Task: iex_eval\n") and prompts[0].endswith("Input:\n")
    assert prompts[0].count("Output:") == 2


def test_parse_synthesis_takes_the_first_pair_and_rejects_junk():
    assert parse_synthesis("4 + 4\nOutput:\n8\n\nInput:\n5 + 5\nOutput:\n10") == Pair("4 + 4\n", "8\n")
    assert parse_synthesis("no output marker") is None
    assert parse_synthesis("\nOutput:\n  \n") is None


def test_kmeans_separates_obvious_groups():
    texts = ["Enum.map list fn"] * 5 + ["GenServer call state reply"] * 5
    labels, _ = kmeans(embed(texts), 2, seed=0)
    assert len(set(labels[:5])) == 1 and len(set(labels[5:])) == 1 and labels[0] != labels[5]


def test_selection_spreads_over_clusters_in_proportion():
    pairs = [Pair(f"Enum.map list fn {i}\n", "x\n") for i in range(8)] + [
        Pair(f"GenServer call reply state {i}\n", "y\n") for i in range(4)
    ]
    chosen = select_diverse(pairs, keep=6, clusters=2, seed=0)
    assert len(chosen) == 6 and len(set(chosen)) == 6
    assert sum("GenServer" in p.input for p in chosen) == 2, "a third of the pool, a third of the picks"
    assert select_diverse(pairs[:3], keep=6, clusters=2, seed=0) == pairs[:3]


def test_rehearsal_uses_base_samples_and_latest_answers():
    calls = {"base": 0, "latest": 0}

    def base(prompt: str, sample: bool) -> str:
        assert sample and prompt.endswith("Input:\n")
        calls["base"] += 1
        return f"{calls['base']} * 2\nOutput:\nguess\n\nInput:\nmore"

    def latest(prompt: str, sample: bool) -> str:
        assert not sample, "refinement is greedy"
        calls["latest"] += 1
        return f"answer to {prompt.strip()}\n"

    rows = rehearsal_rows(ROWS, 3, base, latest, SsrOptions(synthesized=5, keep=3, clusters=2))
    assert calls == {"base": 10, "latest": 10}
    assert len(rows) == 6 and {r["task"] for r in rows} == {"ssr/fim", "ssr/iex_eval"}
    assert all(r["completion"].startswith("answer to ") for r in rows), "targets come from the latest model"
    assert all(r["stage"] == 3 and r["provenance"]["source"] == "ssr" for r in rows)
