
from lsp.idioms.rules.enum_filter_first import RULE
from tests.idioms.harness import one_pass


def test_list_alias_blocks_rewrite():
    source = "alias My.List\nxs |> Enum.filter(&ok?/1) |> List.first()"
    assert one_pass(RULE, source) == source
