
from lsp.idioms.rules.enum_filter_filter import RULE
from tests.idioms.harness import one_pass


def test_fresh_variable_avoids_names_the_predicates_use():
    source = "xs |> Enum.filter(&(&1 > x)) |> Enum.filter(&(&1 < item))"
    assert one_pass(RULE, source) == "xs |> Enum.filter(fn elem -> elem > x && elem < item end)"


def test_reject_parenthesises_looser_operands():
    source = "Enum.reject(xs, &(&1 > 9 || &1 < 0)) |> Enum.reject(&(&1 == 0 or &1 == 1))"
    assert one_pass(RULE, source) == "Enum.reject(xs, fn x -> x > 9 || x < 0 || (x == 0 or x == 1) end)"


def test_a_match_in_a_predicate_is_not_inlined_where_it_would_rebind_the_variable():
    source = "Enum.filter(xs, fn v -> v = v.next end) |> Enum.filter(&(&1 == 0))"
    assert one_pass(RULE, source) == "Enum.filter(xs, fn v -> (fn v -> v = v.next end).(v) && v == 0 end)"


def test_and_in_the_second_predicate_is_parenthesised():
    source = "xs |> Enum.filter(&a?/1) |> Enum.filter(&(b?(&1) and c?(&1)))"
    assert one_pass(RULE, source) == "xs |> Enum.filter(fn x -> a?(x) && (b?(x) and c?(x)) end)"


def test_unicode_in_predicates():
    source = 'xs |> Enum.filter(&(&1 != "é")) |> Enum.filter(&(&1 != "→"))'
    assert one_pass(RULE, source) == 'xs |> Enum.filter(fn x -> x != "é" && x != "→" end)'


def test_comment_inside_a_predicate_blocks_the_rewrite():
    source = "xs\n|> Enum.filter(&a?/1)\n# then\n|> Enum.filter(&b?/1)"
    assert one_pass(RULE, source) == source
