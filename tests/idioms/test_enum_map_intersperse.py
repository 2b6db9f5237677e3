
from lsp.idioms.rules.enum_map_intersperse import RULE
from tests.idioms.harness import one_pass


def test_user_alias_blocks_rewrite():
    source = 'alias Mine.Enum\nxs |> Enum.map(&f/1) |> Enum.intersperse(",")'
    assert one_pass(RULE, source) == source
