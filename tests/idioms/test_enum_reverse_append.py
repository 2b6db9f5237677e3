
from lsp.idioms.rules.enum_reverse_append import RULE
from tests.idioms.harness import one_pass


def test_right_associative_chain_takes_the_whole_tail():
    assert one_pass(RULE, "Enum.reverse(acc) ++ b ++ c") == "Enum.reverse(acc, b ++ c)"


def test_piped_reverse_is_not_touched():
    # `a |> Enum.reverse() ++ b` parses as `a |> (Enum.reverse() ++ b)`.
    source = "a |> Enum.reverse() ++ b"
    assert one_pass(RULE, source) == source
