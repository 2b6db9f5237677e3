
from lsp.idioms.engine import fix_all
from lsp.idioms.rules.map_drop_single_key import RULE
from lsp.syntax.parser import make_parser
from tests.idioms.harness import finding_count


def test_unicode_key_and_nested_call():
    data = 'Map.drop(Map.drop(m, ["naïve"]), [:b])'.encode()
    result = fix_all([RULE], make_parser().parse(data), data)
    assert result.source.decode() == 'Map.delete(Map.delete(m, "naïve"), :b)'


def test_keyword_string_key_does_not_fire():
    assert finding_count(RULE, 'Keyword.drop(opts, ["a"])') == 0
