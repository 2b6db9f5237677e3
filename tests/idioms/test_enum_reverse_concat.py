
from lsp.idioms.rules.enum_reverse_concat import RULE
from tests.idioms.harness import one_pass


def test_concat_inside_a_longer_pipe():
    source = "xs\n|> Enum.reverse()\n|> Enum.concat(tail)\n|> Enum.take(3)"
    assert one_pass(RULE, source) == "xs\n|> Enum.reverse(tail)\n|> Enum.take(3)"


def test_concat_of_a_list_of_lists_is_not_reverse():
    source = "Enum.reverse(xs) |> Enum.concat()"
    assert one_pass(RULE, source) == source
