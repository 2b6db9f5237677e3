
from lsp.idioms.rules.cond_to_if import RULE
from tests.idioms.harness import one_pass


def test_comment_after_a_body_stays_with_it():
    source = "cond do\n  a ->\n    1\n    # still the first branch\n\n  true ->\n    2\nend"
    assert one_pass(RULE, source) == "if a do\n  1\n  # still the first branch\nelse\n  2\nend"


def test_multi_line_body_is_reindented():
    source = "cond do\n  a -> foo(\n    1\n  )\n  true -> 2\nend"
    assert one_pass(RULE, source) == "if a do\n  foo(\n    1\n  )\nelse\n  2\nend"


def test_multi_line_string_body_is_left_alone():
    source = 'x =\n  cond do\n    a ->\n      "line one\n      line two"\n    true -> 2\n  end'
    assert one_pass(RULE, source) == source


def test_heredoc_body_moves_with_its_indentation():
    source = 'cond do\n  a ->\n    """\n    text\n    """\n  true -> 2\nend'
    assert one_pass(RULE, source) == 'if a do\n  """\n  text\n  """\nelse\n  2\nend'
