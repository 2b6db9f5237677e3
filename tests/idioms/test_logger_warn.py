
from lsp.idioms.rules.logger_warn import RULE
from tests.idioms.harness import one_pass


def test_capture_is_renamed():
    assert one_pass(RULE, "Enum.each(msgs, &Logger.warn/1)") == "Enum.each(msgs, &Logger.warning/1)"


def test_unicode_message():
    assert one_pass(RULE, 'Logger.warn("überlauf")') == 'Logger.warning("überlauf")'
