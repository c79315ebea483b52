"""Text hygiene for untrusted strings (upstream text, job ids, labels): one line, no control or bidi
characters, bounded length. Used before anything is stored, logged, printed or rendered.
"""

from __future__ import annotations

import unicodedata

REDACTED = "[redacted]"
"""What a secret value reflected by an upstream becomes before anything stores, logs or sends it."""

# Bidi embeddings/overrides/isolates can make a job id read backwards (spoofing); they carry no meaning here.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _keep(char: str) -> bool:
    """False for control characters, lone surrogates, Unicode noncharacters and bidi controls.

    Surrogates cannot be encoded as UTF-8 and SNS refuses controls and noncharacters in attributes.
    """
    code = ord(char)
    if code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code <= 0xDFFF:
        return False
    if 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE:
        return False
    return char not in _BIDI_CONTROLS


_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Cs": "a lone surrogate",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
}


def unsafe_character(value: str) -> str | None:
    """Why `value` may not be an identifier (job id, label, name), or None when it may.

    Refused: control characters (newline, CR, ANSI escapes), invisible formatting characters (bidi
    overrides and isolates, zero-width spaces and joiners, soft hyphens, BOM), separators, lone
    surrogates, private-use and unassigned code points. Each can make an id print as another (a
    right-to-left override, an ANSI sequence in `jobwatch list`) or differ from what a reader
    copies. Refused rather than removed: an id is what upstream knows the job by, and a changed id
    would poll another job.
    """
    for position, char in enumerate(value):
        kind = _REFUSED_CATEGORIES.get(unicodedata.category(char))
        if kind is not None:
            return f"{kind} (U+{ord(char):04X}) at position {position}"
    return None


def terminal_safe(value: object, *, keep_newlines: bool = False) -> str:
    """Stored or upstream text made safe to print on a terminal or in a plain log: every character
    that is not printable (controls, ANSI escapes, bidi overrides, zero-width and other invisible
    characters, separators but the space) is shown as a visible `\\u{XXXX}`, so nothing can move the
    cursor, recolour the screen or reorder what follows. Newlines stay when `keep_newlines`."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or (keep_newlines and ch == "\n") else f"\\u{{{ord(ch):04X}}}" for ch in text
    )


def clean_text(value: object, limit: int | None = None) -> str:
    """One line of upstream text: whitespace collapsed, control/bidi/surrogate characters removed."""
    text = value if isinstance(value, str) else str(value)
    text = "".join(" " if ch.isspace() else ch for ch in text if ch.isspace() or _keep(ch))
    text = " ".join(text.split())
    return ellipsize(text, limit) if limit is not None else text


def clean_multiline(value: object) -> str:
    """Multi-line upstream text (an error): lines kept, tabs expanded, no control or trailing spaces."""
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4)
    lines = []
    for line in text.split("\n"):
        kept = "".join(" " if ch.isspace() else ch for ch in line if ch.isspace() or _keep(ch))
        lines.append(kept.rstrip())
    return "\n".join(lines).strip("\n")


def ellipsize(text: str, limit: int, marker: str = "…") -> str:
    """Cut `text` to at most `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[:limit]
    return text[: limit - len(marker)].rstrip() + marker


# Characters NFKD cannot reduce to ASCII but that have an obvious ASCII spelling.
_ASCII_SPELLINGS = str.maketrans(
    {
        "·": "-",
        "•": "-",
        "\u2013": "-",
        "—": "-",
        "→": "->",
        "←": "<-",
        "…": "...",
        "\u2018": "'",
        "\u2019": "'",
        "“": '"',
        "”": '"',
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "Th",
        "ð": "d",
        "Ð": "D",
        "\u0131": "i",
    }
)


def to_ascii(value: object) -> str:
    """Printable ASCII on one line: transliterate what has an ASCII spelling, drop the rest."""
    text = clean_text(value).translate(_ASCII_SPELLINGS)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if " " <= ch <= "~")
    return " ".join(text.split())
