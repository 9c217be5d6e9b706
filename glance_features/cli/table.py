"""The one text table of the command line, and the escaping every field gets."""

from __future__ import annotations

from collections.abc import Sequence


def safe(text: object) -> str:
    """One printable line: control characters, escape codes, newlines and
    lone surrogates shown as escapes, never sent raw to a terminal."""
    out = []
    for char in str(text):
        if char.isprintable() or char == " ":
            if 0xD800 <= ord(char) <= 0xDFFF:
                out.append(f"\\u{ord(char):04x}")
            else:
                out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


def render(rows: Sequence[Sequence[str]], last_free: bool = True) -> list[str]:
    """Columns padded to their widest cell; the last one left ragged."""
    if not rows:
        return []
    cells = [[safe(c) for c in row] for row in rows]
    count = len(cells[0])
    padded = count - 1 if last_free else count
    widths = [max(len(row[i]) for row in cells) for i in range(padded)]
    lines = []
    for row in cells:
        parts = [c.ljust(w) for c, w in zip(row[:padded], widths, strict=True)]
        parts += row[padded:]
        lines.append("  ".join(parts).rstrip())
    return lines
