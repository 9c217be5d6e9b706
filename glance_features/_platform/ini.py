"""oslo.config's INI grammar, for hosts where oslo.config is not installed.

It must give the values oslo.config's own parser gives; tests/test_settings.py
holds the two side by side on generated files.
"""

from __future__ import annotations

import io


def parse(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> option -> values (one per assignment), as oslo.config's
    ``ConfigParser`` fills them. Raises ``ValueError`` naming the line."""
    sections: dict[str, dict[str, list[str]]] = {}
    section: str | None = None
    key: str | None = None
    value: list[str] = []

    def flush() -> None:
        if section is None:
            raise ValueError(f"{lineno}: option {key!r} is not in any [section]")
        assert key is not None
        sections[section].setdefault(key, []).append("\n".join(value))

    lineno = 0
    # Lines as oslo.config reads them (open().readlines()): only \n, \r\n and
    # \r end a line; str.splitlines() would also split at \f, \v or U+2028.
    lines = io.StringIO(text, newline=None).readlines()
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip()
        if not line:
            if key:
                flush()
                key, value = None, []
            continue
        if line.startswith((" ", "\t")):
            if key is None:
                raise ValueError(f"{lineno}: unexpected continuation line")
            value.append(line.lstrip())
            continue
        if key:
            flush()
            key, value = None, []
        if line.startswith("["):
            if not line.endswith("]"):
                raise ValueError(f"{lineno}: invalid section (must end with ])")
            if len(line) <= 2:
                raise ValueError(f"{lineno}: empty section name")
            section = line[1:-1]
            sections.setdefault(section, {})
        elif line.startswith(("#", ";")):
            continue
        else:
            key, value = _split(line, lineno)
    if key:
        flush()
    return sections


def _split(line: str, lineno: int) -> tuple[str, list[str]]:
    colon, equal = line.find(":"), line.find("=")
    if colon < 0 and equal < 0:
        raise ValueError(f"{lineno}: no ':' or '=' found in assignment")
    at = equal if colon < 0 or (0 <= equal < colon) else colon
    key, value = line[:at].strip(), line[at + 1 :].strip()
    if not key:
        raise ValueError(f"{lineno}: key cannot be empty")
    if value and value[0] == value[-1] and value.startswith(('"', "'")):
        value = value[1:-1]
    return key, [value]
