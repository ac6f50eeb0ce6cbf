"""Text and attribute values in the XML documents the server writes (target.xml, thread and
library lists, osdata), escaped as xml.sax.saxutils does: that module pulls in urllib, http
and email at start-up, a tenth of the server's import time, for two small functions."""

from __future__ import annotations

_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTRIBUTE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\n": "&#10;", "\r": "&#13;",
                            "\t": "&#9;"})


def escape(text: str) -> str:
    """Element content."""
    # Most text needs nothing, and a thread list escapes thousands: three scans cost less.
    if "&" not in text and "<" not in text and ">" not in text:
        return text
    return text.translate(_TEXT)


def quoteattr(value: str) -> str:
    """An attribute value with its quotes: double ones, single ones if the value holds a double
    quote, and &quot; if it holds both."""
    if "&" in value or "<" in value or ">" in value or "\n" in value or "\r" in value \
            or "\t" in value:
        value = value.translate(_ATTRIBUTE)
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace('"', "&quot;") + '"'
