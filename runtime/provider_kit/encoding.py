"""The SMS alphabet a text needs: providers that send GSM 7-bit unless told otherwise (Vonage's
``type=unicode``, Mitto's ``type: Unicode``) must be told when a text does not fit it, or the
characters that do not fit arrive as ``?``: a code in another script would be unreadable."""

from __future__ import annotations

__all__ = ["GSM7", "is_gsm7"]

# GSM 03.38: the default alphabet and its extension table (ESC itself is not text).
_GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = "\f^{}\\[~]|€"
GSM7 = frozenset(_GSM7_BASIC + _GSM7_EXTENSION)


def is_gsm7(text: str) -> bool:
    """Whether ``text`` fits the GSM 7-bit alphabet (its default table and extension)."""
    return all(char in GSM7 for char in text)
