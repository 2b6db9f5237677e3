
from lsp.idioms.rules.enum_into_empty import RULE
from tests.idioms.harness import one_pass


def test_comment_inside_the_deleted_argument_is_kept():
    source = "Enum.into(xs, # collect\n  %{})"
    assert one_pass(RULE, source) == source


def test_mapset_alias_blocks_mapset_only():
    source = "alias My.MapSet\nEnum.into(xs, MapSet.new())\nEnum.into(xs, %{})"
    assert one_pass(RULE, source) == "alias My.MapSet\nEnum.into(xs, MapSet.new())\nMap.new(xs)"
