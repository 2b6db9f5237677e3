
from lsp.idioms.engine import fix_all
from lsp.idioms.rules.apply_literal_args import RULE
from lsp.syntax.parser import make_parser
from tests.idioms.harness import finding_count, one_pass


def test_nested_apply_reaches_a_fixed_point():
    data = b"apply(M, :f, [apply(g, [x])])"
    result = fix_all([RULE], make_parser().parse(data), data)
    assert result.source == b"M.f(g.(x))"


def test_comment_in_list_and_piped_apply_do_not_fire():
    assert finding_count(RULE, "apply(M, :f, [\n  # why\n  a\n])") == 0
    assert finding_count(RULE, "M |> apply(:f, [a])") == 0


def test_unicode_argument():
    assert one_pass(RULE, 'apply(String, :upcase, ["ça"])') == 'String.upcase("ça")'
