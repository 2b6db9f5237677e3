
from lsp.idioms.rules.keyword_merge_single_key import RULE
from tests.idioms.harness import finding_count, one_pass


def test_comment_inside_call_blocks_rewrite():
    assert finding_count(RULE, "Keyword.merge(opts,\n  # why\n  timeout: 1\n)") == 0


def test_unicode_value():
    assert one_pass(RULE, 'Keyword.merge(opts, label: "café")') == 'Keyword.put(opts, :label, "café")'
