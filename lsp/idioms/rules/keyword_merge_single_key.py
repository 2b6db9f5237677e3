"""`Keyword.merge/2` with a one-key keyword literal → `Keyword.put/3`.

Before:
    Keyword.merge(opts, timeout: 5_000)
    opts |> Keyword.merge([retry: false])
After:
    Keyword.put(opts, :timeout, 5_000)
    opts |> Keyword.put(:retry, false)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.single_helpers import key_value_args, single_keyword_pair, stdlib_call


def rewrite(match: Match) -> list[Edit] | None:
    call = stdlib_call(match, match.node("finding"), "Keyword", "merge", 2, keywords_ok=True)
    if call is None:
        return None
    literal = call.rest[0]
    if literal.type not in ("list", "keywords"):
        return None
    pair = single_keyword_pair(literal)
    if pair is None:
        return None
    return [call.rename("put"), call.replace_last(match.source, key_value_args(match.source, pair))]


RULE = Rule(
    id="keyword_merge_single_key",
    title="Keyword.merge(kw, k: v) → Keyword.put(kw, :k, v)",
    safety=Safety.MOSTLY_SAFE,
    risk="Keyword.put puts the key first where merge puts it last, so the list's order changes",
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example("Keyword.merge(opts, timeout: 5_000)", "Keyword.put(opts, :timeout, 5_000)"),
        Example(
            "opts |> Keyword.merge([retry: false]) |> Req.new()",
            "opts |> Keyword.put(:retry, false) |> Req.new()",
        ),
        Example(
            "def options(opts) do\n  opts\n  |> Keyword.merge(\n    log: :debug\n  )\nend",
            "def options(opts) do\n  opts\n  |> Keyword.put(:log, :debug)\nend",
        ),
        Example('Keyword.merge(opts, ["max age": 1])', 'Keyword.put(opts, :"max age", 1)'),
        # Several keys, or a list built elsewhere, stay a merge.
        Example("Keyword.merge(opts, timeout: 1, retry: false)", None),
        Example("Keyword.merge(opts, [{:timeout, 1}])", None),
        Example("Keyword.merge(opts, extra)", None),
    ),
)
