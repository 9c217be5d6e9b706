"""INI text read with oslo.config's own grammar, ``oslo_config.iniparser``.

Not through ``oslo_config.cfg.ConfigParser``: importing ``cfg`` pulls in
stevedore, netaddr and rfc3986, which cost a command-line run more than all of
its probing (see docs/performance.rst). The sections are filled exactly as
``cfg.ConfigParser`` fills them. Importing this module raises ImportError where
oslo.config is not installed; ``ini`` is the fallback then.
"""

from __future__ import annotations

import io

from oslo_config import iniparser


class _SectionsParser(iniparser.BaseParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, list[str]]] = {}
        self.section: str | None = None

    def new_section(self, section: str) -> None:
        self.sections.setdefault(section, {})
        self.section = section

    def assignment(self, key: str, value: list[str]) -> None:
        if self.section is None:
            raise iniparser.ParseError("Section must be started before assignment", self.lineno, "")
        self.sections[self.section].setdefault(key, []).append("\n".join(value))


def parse(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> option -> values (one per assignment). Raises ``ValueError``
    naming the line, worded as oslo.config words it."""
    parser = _SectionsParser()
    try:
        # Lines as oslo.config reads them (open().readlines()): only \n, \r\n and \r.
        parser.parse(io.StringIO(text, newline=None).readlines())
    except iniparser.ParseError as exc:
        raise ValueError(f"{exc.lineno}, {exc.msg}: {exc.line!r}") from None
    return parser.sections
