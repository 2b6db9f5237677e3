"""Helpers for the control-flow idiom rules: reading `if`/`unless`/`case`/`cond`/`with` in both the
keyword (`do:`/`else:`) and the `do ... end` form, and writing branches back with the right indentation
without losing a comment.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lsp.idioms.base import Edit, Match
from lsp.idioms.nodes import Node, indentation, keyword_pairs, operand, text, unwrap_parens

INDENT = "  "
BLANK_LINE = re.compile(rb"\n[ \t]*\n")
# Quoted literals whose text may span lines; re-indenting them could change their value.
QUOTED_TYPES = frozenset({"string", "charlist", "sigil", "quoted_atom", "quoted_keyword"})
# Operators binding looser than `=`: a `<-` right side made of them would re-associate.
LOOSE_OPERATORS = frozenset({"when", "::", "|", "<-", "\\\\", "=>"})
# Parents in which an expression stands as a whole statement (no precedence to worry about).
STATEMENT_PARENTS = frozenset({"source", "do_block", "else_block", "body", "block"})


def target_name(source: bytes, call: Node) -> str | None:
    """`if` for `if x do ... end`; None for remote calls and non-calls."""
    if call.type != "call":
        return None
    target = call.child_by_field_name("target")
    if target is None or target.type != "identifier":
        return None
    return text(source, target)


def token(node: Node, kind: str) -> Node | None:
    """The first anonymous child token `kind` (`do`, `else`, `end`, `->`) of `node`."""
    return next((c for c in node.children if not c.is_named and c.type == kind), None)


def positional_args(call: Node) -> tuple[list[Node], Node | None]:
    """The positional arguments of a call and its trailing `keywords` node; comments are skipped."""
    arguments = next((c for c in call.named_children if c.type == "arguments"), None)
    if arguments is None:
        return [], None
    args = [c for c in arguments.named_children if c.type not in ("comment", "keywords")]
    keywords = next((c for c in arguments.named_children if c.type == "keywords"), None)
    return args, keywords


def do_block_of(call: Node) -> Node | None:
    return next((c for c in call.named_children if c.type == "do_block"), None)


def sub_blocks(do_block: Node) -> list[Node]:
    return [c for c in do_block.named_children if c.type.endswith("_block")]


def expressions(block: Node) -> list[Node]:
    """The non-comment expressions directly under a block-like node (stopping at an `*_block`)."""
    out = []
    for child in block.named_children:
        if child.type.endswith("_block"):
            break
        if child.type != "comment":
            out.append(child)
    return out


def negated_operand(node: Node) -> Node | None:
    """`x` for `!x` and `not x` (parentheses around `x` are kept)."""
    if node.type != "unary_operator":
        return None
    op = node.child_by_field_name("operator")
    if op is None or op.type not in ("!", "not"):
        return None
    return node.child_by_field_name("operand")


def condition_text(source: bytes, node: Node) -> str | None:
    """`node` as the head of an `if`/`unless`: parentheses dropped, or None when dropping them would let
    a paren-less call or a `do` block capture the `if`'s own keywords or `do`."""
    inner = unwrap_parens(node)
    if inner.type == "call":
        arguments = next((c for c in inner.named_children if c.type == "arguments"), None)
        paren_less = arguments is not None and source[arguments.start_byte : arguments.start_byte + 1] != b"("
        if paren_less or do_block_of(inner) is not None:
            return None
    if "\n" in text(source, inner):
        return None
    return text(source, inner)


def has_comment(node: Node) -> bool:
    if node.type == "comment":
        return True
    return any(has_comment(c) for c in node.named_children)


def comments_in(node: Node, start: int, end: int) -> list[Node]:
    """Comment nodes under `node` lying within [start, end)."""
    if node.end_byte <= start or node.start_byte >= end:
        return []
    if node.type == "comment":
        return [node] if start <= node.start_byte and node.end_byte <= end else []
    found: list[Node] = []
    for child in node.named_children:
        found.extend(comments_in(child, start, end))
    return found


def keeps_comments(source: bytes, scope: Node, edits: Iterable[Edit]) -> bool:
    """Every comment the edits replace reappears in their new text (edits may move it between them)."""
    edits = list(edits)
    wanted = Counter(text(source, c) for e in edits for c in comments_in(scope, e.start, e.end))
    new_text = "\n".join(e.text for e in edits)
    return all(new_text.count(comment) >= count for comment, count in wanted.items())


def shift(source_text: str, old: str, new: str) -> str:
    """Re-indent every line but the first from `old` to `new`; empty lines stay empty."""
    lines = source_text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        out.append(new + line[len(old) :] if line and line.startswith(old) else line)
    return "\n".join(out)


def can_shift(source: bytes, node: Node, old: str, new: str) -> bool:
    """Re-indenting `node`'s lines leaves every multi-line string, charlist or sigil value unchanged:
    plain quotes must not span lines; heredocs must have every line under the old indentation."""
    if old == new or node.start_point.row == node.end_point.row:
        return True
    if node.type in QUOTED_TYPES:
        start = node.child_by_field_name("quoted_start")
        delimiter = text(source, start) if start is not None else ""
        if delimiter not in ('"""', "'''"):
            return False
        lines = text(source, node).split("\n")[1:]
        return all(not line.strip() or line.startswith(old) for line in lines)
    return all(can_shift(source, child, old, new) for child in node.named_children)


@dataclass(frozen=True)
class Piece:
    """A run of source code copied verbatim into a new place, re-indented from `old_indent`."""

    node_start: int
    node_end: int
    old_indent: str
    nodes: tuple[Node, ...]


def piece(source: bytes, nodes: Sequence[Node]) -> Piece:
    return Piece(nodes[0].start_byte, nodes[-1].end_byte, indentation(source, nodes[0].start_byte), tuple(nodes))


def render_pieces(source: bytes, pieces: Sequence[Piece], indent: str) -> str | None:
    """The pieces one below the other at `indent` (each line prefixed), a blank line kept where the
    source had one; None when a multi-line string would change."""
    lines: list[str] = []
    previous_end = None
    for part in pieces:
        if not all(can_shift(source, n, part.old_indent, indent) for n in part.nodes):
            return None
        if previous_end is not None and BLANK_LINE.search(source, previous_end, part.node_start):
            lines.append("")
        body = source[part.node_start : part.node_end].decode("utf-8")
        lines.append(indent + shift(body, part.old_indent, indent))
        previous_end = part.node_end
    return "\n".join(lines)


def clause_pieces(source: bytes, clause: Node) -> list[Piece] | None:
    """What follows `->` in a stab clause (comments included), as pieces; None for an empty body."""
    arrow = token(clause, "->")
    if arrow is None:
        return None
    pieces: list[Piece] = []
    for child in clause.named_children:
        if child.start_byte < arrow.end_byte:
            continue
        if child.type == "comment":
            pieces.append(piece(source, [child]))
        elif child.type == "body" and child.named_children:
            pieces.append(piece(source, child.named_children))
    if not any(p.nodes[0].type != "comment" for p in pieces):
        return None
    return pieces


def body_pieces(source: bytes, block: Node, after: Node | None = None) -> list[Piece] | None:
    """The `do` part of a do_block (or an else_block after its `else` token) as one piece."""
    start = after.end_byte if after is not None else 0
    nodes = []
    for child in block.named_children:
        if child.type.endswith("_block"):
            break
        if child.start_byte >= start:
            nodes.append(child)
    if not any(n.type != "comment" for n in nodes):
        return None
    return [piece(source, nodes)]


def clause_head(source: bytes, clause: Node) -> Node | None:
    """The single pattern (or `pattern when guard`) left of `->`; None for zero or several."""
    left = clause.child_by_field_name("left")
    if left is None:
        return None
    if left.type == "binary_operator":
        return left
    items = [c for c in left.named_children if c.type != "comment"]
    if len(items) != 1 or len(items) != len(left.named_children):
        return None
    return items[0]


def stab_clauses(block: Node) -> list[Node] | None:
    """The clauses of a cond/case/else block; None when it holds anything else (comments aside)."""
    clauses = [c for c in block.named_children if c.type == "stab_clause"]
    if any(c.type not in ("stab_clause", "comment") and not c.type.endswith("_block")
           for c in block.named_children):
        return None
    return clauses


def render_if(source: bytes, anchor: Node, condition: str, then_pieces: Sequence[Piece],
              else_pieces: Sequence[Piece]) -> str | None:
    """`if condition do ... else ... end`, indented for a replacement of `anchor`."""
    base = indentation(source, anchor.start_byte)
    then_text = render_pieces(source, then_pieces, base + INDENT)
    else_text = render_pieces(source, else_pieces, base + INDENT)
    if then_text is None or else_text is None:
        return None
    return f"if {condition} do\n{then_text}\n{base}else\n{else_text}\n{base}end"


@dataclass(frozen=True)
class Clause:
    head: str
    pieces: tuple[Piece, ...]
    # The body started on the line after `->` (the formatter then lays out every clause that way).
    broken: bool


def render_case(source: bytes, anchor: Node, subject: str, clauses: Sequence[Clause]) -> str | None:
    """`case subject do ... end` laid out as `mix format` does: every clause on one line when all bodies
    are single-line expressions, otherwise each body under its head and a blank line between clauses."""
    base = indentation(source, anchor.start_byte)
    inner = base + INDENT
    one_line = all(
        not c.broken and len(c.pieces) == 1 and len(c.pieces[0].nodes) == 1
        and c.pieces[0].nodes[0].start_point.row == c.pieces[0].nodes[0].end_point.row
        for c in clauses
    )
    rendered = []
    for clause in clauses:
        if one_line:
            rendered.append(f"{inner}{clause.head} -> {text(source, clause.pieces[0].nodes[0])}")
            continue
        body = render_pieces(source, clause.pieces, inner + INDENT)
        if body is None:
            return None
        rendered.append(f"{inner}{clause.head} ->\n{body}")
    separator = "\n" if one_line else "\n\n"
    return f"case {subject} do\n{separator.join(rendered)}\n{base}end"


def clause_of(source: bytes, clause: Node) -> Clause | None:
    head = clause_head(source, clause)
    pieces = clause_pieces(source, clause)
    if head is None or pieces is None or "\n" in text(source, head):
        return None
    arrow = token(clause, "->")
    broken = arrow is not None and pieces[0].nodes[0].start_point.row > arrow.start_point.row
    return Clause(text(source, head), tuple(pieces), broken)


# --- if / unless --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conditional:
    """An `if`/`unless` call in either form.

    Keyword form: `then_value`/`else_value` are the `do:`/`else:` values. Block form: `then_span` and
    `else_span` are the raw byte ranges after `do` / `else` up to the next keyword, comments and line
    breaks included, so swapping them keeps every comment with its branch.
    """

    call: Node
    keyword: str
    condition: Node
    keyword_form: bool
    then_value: Node | None = None
    else_value: Node | None = None
    do_pair: Node | None = None
    else_pair: Node | None = None
    do_block: Node | None = None
    then_nodes: tuple[Node, ...] = ()
    else_nodes: tuple[Node, ...] | None = None
    then_span: tuple[int, int] = (0, 0)
    else_span: tuple[int, int] | None = None

    @property
    def has_else(self) -> bool:
        return self.else_value is not None if self.keyword_form else self.else_nodes is not None


def do_else_pairs(source: bytes, pairs_node: Node) -> list[tuple[str, Node, Node]] | None:
    """The `do:` and optional `else:` pairs of a keyword-form call; None when any other key is there."""
    pairs = keyword_pairs(source, pairs_node)
    keys = [key for key, _pair, _value in pairs]
    if keys not in (["do"], ["do", "else"]) or len(pairs) != len(pairs_node.named_children):
        return None
    return pairs


def read_conditional(source: bytes, call: Node, keywords: tuple[str, ...] = ("if", "unless")) -> Conditional | None:
    """An `if`/`unless` with one condition and only `do`/`else` branches, or None."""
    keyword = target_name(source, call)
    if keyword not in keywords:
        return None
    args, pairs_node = positional_args(call)
    do_block = do_block_of(call)
    if len(args) != 1:
        return None
    if pairs_node is not None and do_block is None:
        pairs = do_else_pairs(source, pairs_node)
        if pairs is None:
            return None
        else_pair = pairs[1][1] if len(pairs) == 2 else None
        else_value = pairs[1][2] if len(pairs) == 2 else None
        return Conditional(call, keyword, args[0], True, then_value=pairs[0][2], else_value=else_value,
                           do_pair=pairs[0][1], else_pair=else_pair)
    if do_block is None or pairs_node is not None:
        return None
    blocks = sub_blocks(do_block)
    if any(b.type != "else_block" for b in blocks) or len(blocks) > 1:
        return None
    do_token, end_token = token(do_block, "do"), token(do_block, "end")
    if do_token is None or end_token is None:
        return None
    else_block = blocks[0] if blocks else None
    then_end = else_block.start_byte if else_block is not None else end_token.start_byte
    else_nodes = else_span = None
    if else_block is not None:
        else_token = token(else_block, "else")
        if else_token is None:
            return None
        else_nodes = tuple(c for c in else_block.named_children if c.type != "comment")
        else_span = (else_token.end_byte, end_token.start_byte)
    return Conditional(call, keyword, args[0], False, do_block=do_block,
                       then_nodes=tuple(expressions(do_block)), else_nodes=else_nodes,
                       then_span=(do_token.end_byte, then_end), else_span=else_span)


def swap_branches(source: bytes, cond: Conditional) -> list[Edit] | None:
    """Edits exchanging the two (non-empty) branches of an if/unless with an else."""
    if cond.keyword_form:
        if cond.then_value is None or cond.else_value is None:
            return None
        then_text, else_text = text(source, cond.then_value), text(source, cond.else_value)
        return [Edit(cond.then_value.start_byte, cond.then_value.end_byte, else_text),
                Edit(cond.else_value.start_byte, cond.else_value.end_byte, then_text)]
    if not cond.then_nodes or not cond.else_nodes or cond.else_span is None:
        return None
    then_raw = source[cond.then_span[0] : cond.then_span[1]].decode("utf-8")
    else_raw = source[cond.else_span[0] : cond.else_span[1]].decode("utf-8")
    if then_raw.startswith("\n") != else_raw.startswith("\n"):
        return None  # one branch on the `do` line, the other below it: swapping would misplace them
    return [Edit(*cond.then_span, else_raw), Edit(*cond.else_span, then_raw)]


def drop_else(source: bytes, call: Node) -> Edit | None:
    """The edit deleting a call's trailing `else` (the `else:` pair or the `else` block), or None."""
    _args, pairs_node = positional_args(call)
    if pairs_node is not None:
        pairs = [pair for _key, pair, _value in keyword_pairs(source, pairs_node)]
        keys = [key for key, _pair, _value in keyword_pairs(source, pairs_node)]
        if len(pairs) < 2 or keys[-1] != "else" or "else" in keys[:-1]:
            return None
        return Edit(pairs[-2].end_byte, pairs[-1].end_byte, "")
    do_block = do_block_of(call)
    if do_block is None:
        return None
    blocks = sub_blocks(do_block)
    end_token = token(do_block, "end")
    if not blocks or blocks[-1].type != "else_block" or end_token is None:
        return None
    start = blocks[-1].start_byte
    if do_block.start_point.row == end_token.start_point.row:
        # One line: `if a do b else nil end` keeps a single space before `end`.
        while start > 0 and source[start - 1 : start] == b" ":
            start -= 1
        return Edit(start, end_token.start_byte, " ")
    return Edit(start, end_token.start_byte, "")


def rename_keyword(cond: Conditional, new_keyword: str) -> Edit:
    target = cond.call.child_by_field_name("target")
    return Edit(target.start_byte, target.end_byte, new_keyword)


def statement_or_operand(source: bytes, anchor: Node, node: Node) -> str:
    """`node`'s text to stand in place of `anchor`; parenthesised unless `anchor` is a statement."""
    parent = anchor.parent
    if parent is None or parent.type in STATEMENT_PARENTS:
        return text(source, node)
    return operand(source, node)


def else_is_nil(cond: Conditional) -> bool:
    """The else branch is `nil` or empty (block form: nothing, not even a comment)."""
    if cond.keyword_form:
        value = cond.else_value
        return value is not None and (value.type == "nil" or (value.type == "block" and not value.named_children))
    if cond.do_block is None:
        return False
    else_block = next((b for b in sub_blocks(cond.do_block) if b.type == "else_block"), None)
    if else_block is None:
        return False
    children = else_block.named_children
    return not children or (len(children) == 1 and children[0].type == "nil")


# --- booleans -----------------------------------------------------------------------------------------

COMPARISONS = frozenset({"==", "!=", "===", "!==", "<", ">", "<=", ">=", "in", "not in"})
# Stdlib modules whose `?` functions return booleans.
BOOLEAN_PREDICATE_MODULES = frozenset(
    {"Enum", "Map", "MapSet", "Keyword", "List", "String", "Regex", "Integer", "Float", "Code", "File",
     "Process", "Node", "Range", "Tuple", "Access", "Version", "Date", "DateTime", "NaiveDateTime", "Time",
     "Kernel", "Function", "Module", "Application", "Path", "System", "URI", "Exception"}
)


def certainly_boolean(match: Match, node: Node) -> bool:
    """Whenever `node` returns, it returns `true` or `false`.

    `not x` raises on a non-boolean `x` where `x` alone would not, so a `not` may only be dropped over
    such an expression. Local `valid?`-style predicates are not trusted: nothing forces them to return
    a boolean.
    """
    node = unwrap_parens(node)
    if node.type == "boolean":
        return True
    if node.type == "unary_operator":
        op = node.child_by_field_name("operator")
        return op is not None and op.type in ("!", "not")
    if node.type == "binary_operator":
        op = node.child_by_field_name("operator")
        kind = op.type if op is not None else ""
        if kind in COMPARISONS:
            return True
        if kind in ("and", "or"):  # the left must be a boolean (or it raises); the right is returned
            return certainly_boolean(match, node.child_by_field_name("right"))
        if kind in ("&&", "||"):
            return all(certainly_boolean(match, node.child_by_field_name(side)) for side in ("left", "right"))
        return False
    if node.type == "call":
        target = node.child_by_field_name("target")
        if target is None:
            return False
        if target.type == "identifier":
            name = match.text(target)
            return name.startswith("is_") and do_block_of(node) is None
        if target.type == "dot":
            module, name = target.child_by_field_name("left"), target.child_by_field_name("right")
            if module is None or name is None or module.type != "alias":
                return False
            module_name = match.text(module)
            return (module_name in BOOLEAN_PREDICATE_MODULES and match.stdlib(module_name)
                    and match.text(name).endswith("?"))
    return False


def droppable_negation(match: Match, node: Node) -> Node | None:
    """The operand of `!x`, or of `not x` when `x` is certainly boolean (else `not` would have raised)."""
    operand = negated_operand(node)
    if operand is None:
        return None
    op = node.child_by_field_name("operator")
    if op is not None and op.type == "not" and not certainly_boolean(match, operand):
        return None
    return operand


# --- two-clause cond/case → if ------------------------------------------------------------------------


def clause_branches(source: bytes, block: Node, clauses: Sequence[Node]) -> list[list[Piece]] | None:
    """Each clause's body as pieces, with the comments standing between clauses given to a branch: a
    comment indented deeper than the next clause ends the previous body, any other one opens the next."""
    branches: list[list[Piece]] = []
    for clause in clauses:
        pieces = clause_pieces(source, clause)
        if pieces is None:
            return None
        branches.append(pieces)
    leading: list[list[Piece]] = [[] for _ in clauses]
    trailing: list[list[Piece]] = [[] for _ in clauses]
    index = -1
    for child in block.named_children:
        if child.type == "stab_clause":
            index += 1
        elif child.type == "comment":
            following = clauses[index + 1] if index + 1 < len(clauses) else None
            if index < 0:
                leading[0].append(piece(source, [child]))
            elif following is None or child.start_point.column > following.start_point.column:
                trailing[index].append(piece(source, [child]))
            else:
                leading[index + 1].append(piece(source, [child]))
    return [lead + body + trail for lead, body, trail in zip(leading, branches, trailing, strict=True)]


def two_way_if(source: bytes, anchor: Node, condition: str, block: Node, clauses: Sequence[Node],
               then_index: int) -> Edit | None:
    """Replace `anchor` with an if/else taking clause `then_index` as the then-branch, the other as else."""
    branches = clause_branches(source, block, clauses)
    if branches is None:
        return None
    rendered = render_if(source, anchor, condition, branches[then_index], branches[1 - then_index])
    if rendered is None:
        return None
    edit = Edit(anchor.start_byte, anchor.end_byte, rendered)
    return edit if keeps_comments(source, anchor, [edit]) else None


# --- with ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class With:
    """A `with` call in either form: its head clauses, body and else clauses.

    `body` is the do-block (block form) or the `do:` value (keyword form); `else_clauses` is None
    without an else.
    """

    call: Node
    clauses: tuple[Node, ...]
    keyword_form: bool
    body: tuple[Node, ...]
    do_value: Node | None
    else_block: Node | None  # else_block, or the parenthesised `else:` value
    else_clauses: tuple[Node, ...] | None


def read_with(source: bytes, call: Node) -> With | None:
    if target_name(source, call) != "with":
        return None
    clauses, pairs_node = positional_args(call)
    do_block = do_block_of(call)
    if not clauses:
        return None
    if pairs_node is not None and do_block is None:
        pairs = do_else_pairs(source, pairs_node)
        if pairs is None:
            return None
        else_value = pairs[1][2] if len(pairs) == 2 else None
        else_clauses = None
        if else_value is not None:
            if else_value.type != "block":
                return None
            found = stab_clauses(else_value)
            if not found:
                return None
            else_clauses = tuple(found)
        return With(call, tuple(clauses), True, (pairs[0][2],), pairs[0][2], else_value, else_clauses)
    if do_block is None or pairs_node is not None:
        return None
    blocks = sub_blocks(do_block)
    if any(b.type != "else_block" for b in blocks) or len(blocks) > 1:
        return None
    else_block = blocks[0] if blocks else None
    else_clauses = None
    if else_block is not None:
        found = stab_clauses(else_block)
        if not found:
            return None
        else_clauses = tuple(found)
    return With(call, tuple(clauses), False, tuple(expressions(do_block)), None, else_block, else_clauses)
