"""The server's XML escaping gives what the standard library's xml.sax.saxutils gives."""

from __future__ import annotations

from xml.sax import saxutils

import pytest

from gdbstub import xml_text

SAMPLES = ["", "plain", "a&b<c>d", 'say "hi"', "it's", "both \" and ' here", "tab\tnl\ncr\r",
           "&amp; already", "thread \u00e9\u4e2d"]


@pytest.mark.parametrize("text", SAMPLES)
def test_escape_and_quoteattr_match_saxutils(text):
    assert xml_text.escape(text) == saxutils.escape(text)
    assert xml_text.quoteattr(text) == saxutils.quoteattr(text)
