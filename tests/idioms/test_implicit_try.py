
from lsp.idioms.rules.implicit_try import RULE
from tests.idioms.harness import one_pass


def test_one_line_def():
    source = "def foo do try do x() catch :b -> :c end end"
    assert one_pass(RULE, source) == "def foo do x() catch :b -> :c end"


def test_heredoc_in_the_body_keeps_its_value():
    source = 'def f do\n  try do\n    """\n    text\n    """\n  rescue\n    _ -> :e\n  end\nend'
    assert one_pass(RULE, source) == 'def f do\n  """\n  text\n  """\nrescue\n  _ -> :e\nend'


def test_multi_line_string_in_the_body_is_left_alone():
    source = 'def f do\n  try do\n    "a\n    b"\n  rescue\n    _ -> :e\n  end\nend'
    assert one_pass(RULE, source) == source


def test_comment_after_the_try_end_is_kept_or_rule_skips():
    source = "def f do\n  try do\n    run()\n  rescue\n    _ -> :e\n  end # done\nend"
    assert one_pass(RULE, source) == source
