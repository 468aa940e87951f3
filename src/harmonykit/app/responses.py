"""HTTP response helpers shared by :mod:`harmonykit.app.server` and
:mod:`harmonykit.app.routes` (no web framework needed here)."""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["content_disposition"]


def content_disposition(filename: str) -> str:
    """``Content-Disposition: attachment`` for any file name: an ASCII ``filename=``
    fallback (non-ASCII, quotes, backslashes and control characters replaced by ``_``) and
    the exact name as RFC 5987 ``filename*=UTF-8''<percent-encoded>``.

    >>> print(content_disposition('猫 "cat".png'))
    attachment; filename="_ _cat_.png"; filename*=UTF-8''%E7%8C%AB%20%22cat%22.png
    """
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
