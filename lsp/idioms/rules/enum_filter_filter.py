"""Two `Enum.filter` (or two `Enum.reject`) in a row → one call with the predicates joined by `&&` (`||`).

Before:
    users |> Enum.filter(&active?/1) |> Enum.filter(&(&1.age > 17))
After:
    users |> Enum.filter(fn x -> active?(x) && x.age > 17 end)
"""

from __future__ import annotations

from lsp.idioms.base import Edit, Example, Match, Rule, Safety
from lsp.idioms.enum_helpers import ATOM, Expr, apply_function, fresh_variable, fused, fused_fn_call

# filter keeps what passes both predicates; reject drops what fails either.
JOIN = {"filter": "&&", "reject": "||"}


def rewrite(match: Match) -> list[Edit] | None:
    pair = fused(match, "Enum", ("filter", "reject"))
    if pair is None or pair.outer.module != "Enum" or pair.outer.name != pair.inner.name:
        return None
    if len(pair.outer_extra) != 1:
        return None
    first, second = pair.inner_extra[0], pair.outer_extra[0]
    variable = fresh_variable(match.source, [first, second])
    element = Expr(variable, ATOM)
    left, right = apply_function(match.source, first, element), apply_function(match.source, second, element)
    if left is None or right is None:
        return None
    op = JOIN[pair.outer.name]
    body = f"{left.operand_of(op, left=True)} {op} {right.operand_of(op, left=False)}"
    edit = fused_fn_call(pair, "Enum", pair.outer.name, variable, body)
    return [edit] if edit is not None else None


RULE = Rule(
    id="enum_filter_filter",
    title="Enum.filter |> Enum.filter → one Enum.filter",
    safety=Safety.MOSTLY_SAFE,
    risk="the two predicates now run interleaved, element by element (their side effects reorder)",
    rewrite=rewrite,
    doc=__doc__,
    examples=(
        Example(
            "users |> Enum.filter(&active?/1) |> Enum.filter(&(&1.age > 17))",
            "users |> Enum.filter(fn x -> active?(x) && x.age > 17 end)",
        ),
        Example(
            "Enum.filter(users, fn u -> u.active end) |> Enum.filter(fn u -> u.admin || u.owner end)",
            "Enum.filter(users, fn u -> u.active && (u.admin || u.owner) end)",
        ),
        Example(
            "def clean(xs), do: Enum.reject(Enum.reject(xs, &is_nil/1), &String.Chars.impl_for/1)",
            "def clean(xs), do: Enum.reject(xs, fn x -> is_nil(x) || String.Chars.impl_for(x) end)",
        ),
        Example(
            "def visible(items, x) do\n  items\n  |> Enum.filter(&(&1.owner == x))\n"
            "  |> Enum.filter(fn item -> item.published end)\nend",
            "def visible(items, x) do\n  items\n  |> Enum.filter(fn item -> item.owner == x && item.published end)\nend",
        ),
        Example(
            "xs |> Enum.filter(keep?) |> Enum.filter(fn v -> Enum.any?(v.tags, &(&1 == v.kind)) end)",
            "xs |> Enum.filter(fn v -> keep?.(v) && Enum.any?(v.tags, &(&1 == v.kind)) end)",
        ),
        # Renaming `w` inside a body that binds variables of its own is not attempted: it is called.
        Example(
            "xs |> Enum.filter(fn v -> v.ok end) |> Enum.filter(fn w -> Enum.any?(w.tags, fn t -> t == w end) end)",
            "xs |> Enum.filter(fn v -> v.ok && (fn w -> Enum.any?(w.tags, fn t -> t == w end) end).(v) end)",
        ),
        Example(
            "def recent(events, cutoff) do\n  events\n  |> Enum.filter(fn event -> DateTime.compare(event.at, cutoff) == :gt end)\n"
            "  |> Enum.filter(fn event -> event.kind in [:login, :logout, :password_reset] end)\nend",
            "def recent(events, cutoff) do\n  events\n  |> Enum.filter(fn event ->\n"
            "    DateTime.compare(event.at, cutoff) == :gt && event.kind in [:login, :logout, :password_reset]\n"
            "  end)\nend",
        ),
        # filter then reject is a different (contested) check; multi-clause fns are left alone.
        Example("xs |> Enum.filter(&a?/1) |> Enum.reject(&b?/1)", None),
        Example("xs |> Enum.filter(&a?/1) |> Enum.filter(fn\n  nil -> false\n  _ -> true\nend)", None),
        # Too long even broken over lines: `mix format` would split the `&&` too.
        Example(
            "events\n|> Enum.filter(fn event -> DateTime.compare(event.at, cutoff) == :gt end)\n"
            "|> Enum.filter(fn event -> event.kind in [:login, :logout, :password_reset, :mfa, :sso] end)",
            None,
        ),
    ),
)
