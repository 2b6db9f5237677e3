
from lsp.idioms.engine import fix_all
from lsp.idioms.rules.map_merge_single_key import RULE
from lsp.syntax.parser import make_parser
from tests.idioms.harness import finding_count, one_pass


def test_nested_merges_reach_a_fixed_point():
    data = b"Map.merge(Map.merge(m, %{a: 1}), %{b: 2})"
    result = fix_all([RULE], make_parser().parse(data), data)
    assert result.source == b"Map.put(Map.put(m, :a, 1), :b, 2)"


def test_unicode_and_trailing_comment_kept():
    source = 'Map.merge(m, %{"ключ" => "é"}) # note\n'
    assert one_pass(RULE, source) == 'Map.put(m, "ключ", "é") # note\n'


def test_extra_argument_or_keyword_options_do_not_fire():
    assert finding_count(RULE, "Map.merge(a, %{k: 1}, fn _, x, _ -> x end)") == 0
