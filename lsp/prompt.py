"""THE prompt format, shared by serving and training. Change it only by bumping PROMPT_FORMAT_VERSION.

Layout (version 1), chosen so that typing only appends at the end of the prompt and the backend reuses
its KV cache for everything before the cursor:

    [snippets from other open files]   changes when another file changes
    [file header + module context]     changes when code outside the prefix/suffix windows changes
    [suffix]                           text after the cursor: unchanged while the user types
    [prefix]                           text before the cursor: typing appends here

With FIM tokens (the model's vocabulary has them) the suffix and prefix are wrapped SPM-style:
`<fim_suffix>suffix<fim_prefix>prefix<fim_middle>`. Without them (e.g. SmolLM2) the suffix is left out
and the prompt ends with the prefix, so the model simply continues the code.

Context lines are rendered as Elixir comments so that the prompt stays valid-looking Elixir.
"""

from __future__ import annotations

from dataclasses import dataclass

PROMPT_FORMAT_VERSION = "devstral-elixir-prompt/1"
# GGUF metadata key an exported model carries; the server warns when it differs from the version above.
PROMPT_FORMAT_METADATA_KEY = "devstral_elixir.prompt_format"


@dataclass(frozen=True)
class FimTokens:
    prefix: str
    suffix: str
    middle: str


@dataclass(frozen=True)
class Segment:
    text: str
    # Special segments are single control tokens (FIM markers), never tokenized as plain text.
    special: bool = False


@dataclass(frozen=True)
class Prompt:
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments)


@dataclass(frozen=True)
class Snippet:
    """A chunk of another open file, offered as related code."""

    path: str
    text: str


@dataclass(frozen=True)
class PromptInput:
    path: str
    prefix: str
    suffix: str = ""
    # Out-of-window facts about the current file: module line, aliases, @doc/@spec, sibling heads.
    context_lines: tuple[str, ...] = ()
    snippets: tuple[Snippet, ...] = ()


def _comment_block(title: str, lines: list[str]) -> str:
    body = "".join(f"# {line}".rstrip() + "\n" for line in lines)
    return f"# {title}\n{body}"


def render_header(inp: PromptInput) -> str:
    """Everything before the suffix/prefix: stable across keystrokes."""
    parts = []
    for snippet in inp.snippets:
        parts.append(_comment_block(f"Related code from {snippet.path}:", snippet.text.splitlines()))
    parts.append(f"# File: {inp.path}\n")
    if inp.context_lines:
        parts.append(_comment_block("Context:", list(inp.context_lines)))
    return "".join(parts)


def render_completion_prompt(inp: PromptInput, fim: FimTokens | None) -> Prompt:
    header = Segment(render_header(inp))
    if fim is None:
        return Prompt((header, Segment(inp.prefix)))
    return Prompt(
        (
            header,
            Segment(fim.suffix, special=True),
            Segment(inp.suffix),
            Segment(fim.prefix, special=True),
            Segment(inp.prefix),
            Segment(fim.middle, special=True),
        )
    )


def render_training_example(inp: PromptInput, middle: str, fim: FimTokens | None) -> tuple[Prompt, str]:
    """A (prompt, target) pair for fine-tuning, rendered exactly as the server will render it."""
    return render_completion_prompt(inp, fim), middle


# -- "Make idiomatic (model)" ------------------------------------------------------------------------------
# The rewrite instruction, in the same file and version as completions: the training pipeline renders its
# rewrite examples with `render_rewrite_example`, so the model learns exactly what the server sends.
REWRITE_TASK = "Rewrite the code below as idiomatic Elixir. Keep its behaviour, function names and arities."
REWRITE_BEFORE = "# Before:"
REWRITE_AFTER = "# After:"
# The model ends its answer with this line; the server also stops at it.
REWRITE_END = "# End"


@dataclass(frozen=True)
class RewriteInput:
    path: str
    code: str  # dedented to column 0
    context_lines: tuple[str, ...] = ()
    # Titles of the rule findings in the code: cheap, reliable guidance for a small model.
    hints: tuple[str, ...] = ()


def render_rewrite_prompt(inp: RewriteInput) -> Prompt:
    parts = [f"# File: {inp.path}\n"]
    if inp.context_lines:
        parts.append(_comment_block("Context:", list(inp.context_lines)))
    parts.append(f"# Task: {REWRITE_TASK}\n")
    if inp.hints:
        parts.append(_comment_block("Hints:", [f"- {hint}" for hint in inp.hints]))
    code = inp.code if inp.code.endswith("\n") else inp.code + "\n"
    parts.append(f"{REWRITE_BEFORE}\n{code}{REWRITE_AFTER}\n")
    return Prompt((Segment("".join(parts)),))


def render_rewrite_example(inp: RewriteInput, rewritten: str) -> tuple[Prompt, str]:
    """A (prompt, target) pair for fine-tuning the rewrite task."""
    body = rewritten if rewritten.endswith("\n") else rewritten + "\n"
    return render_rewrite_prompt(inp), f"{body}{REWRITE_END}\n"
