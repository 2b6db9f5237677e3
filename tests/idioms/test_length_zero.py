
from lsp.idioms.rules.length_zero import RULE
from tests.idioms.harness import one_pass


def test_guard_keeps_guard_safe_code():
    source = "defp go(xs) when is_list(xs) and length(xs) == 0, do: :empty"
    assert one_pass(RULE, source) == "defp go(xs) when is_list(xs) and xs == [], do: :empty"


def test_single_step_pipe_and_reversed_operands():
    assert one_pass(RULE, "xs |> length() > 0") == "xs != []"
    assert one_pass(RULE, "0 < length(xs)") == "xs != []"
    assert one_pass(RULE, "0 == length(Map.keys(m))") == "Map.keys(m) == []"


def test_nested_occurrences_in_one_expression():
    source = "length(a) == 0 and length(b) > 0"
    assert one_pass(RULE, source) == "a == [] and b != []"


def test_non_empty_test_in_a_case_guard_is_left_alone():
    source = "case xs do\n  v when length(v) > 0 -> :some\n  _ -> :none\nend"
    assert one_pass(RULE, source) == source
