"""Text that leaves the job, escaped for where it goes: Slack mrkdwn, and one-line logs.

Tenant and meter names are anyone's input: in Slack, ``<!channel>`` pings a whole
channel and ``<https://x|y>`` makes a link, so ``&``, ``<`` and ``>`` are escaped
as Slack's "Formatting text" docs ask; in a log, a newline would start a forged line.
"""

from __future__ import annotations

import unicodedata

_SLACK = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROLS = {c: f"\\x{c:02x}" for c in range(0x20)} | {c: f"\\x{c:02x}" for c in range(0x7F, 0xA0)}
_CONTROLS |= {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"}
_ONE_LINE = str.maketrans(_CONTROLS)


def slack_text(text: str) -> str:
    """``text`` as it must appear in a Slack ``text`` or mrkdwn field: no mentions, no links."""
    return text.translate(_SLACK)


def one_line(text: str) -> str:
    """``text`` with every control character and line break written as an escape."""
    return text.translate(_ONE_LINE)


def plain_field(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (PagerDuty's summary, component, group)."""
    text = one_line(unicodedata.normalize("NFC", text))
    return text if len(text) <= limit else text[: limit - 1] + "…"
