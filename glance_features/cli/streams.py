"""The command line's standard streams: the report's own, and where strays go."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from glance_features.errors import GlanceFeaturesError


class ClosedOutput(GlanceFeaturesError):
    """There is no standard output to write the report to."""


# Where the report goes: the original stdout, kept aside so that nothing a
# plugin (or a child it starts) prints can corrupt the JSON or metrics.
_report: TextIO | None = None


def report_stream() -> TextIO:
    """Where the report goes: the standard output kept aside at start."""
    stream = _report if _report is not None else sys.stdout
    if stream is None:
        raise ClosedOutput("standard output is closed: use --output FILE")
    return stream


def keep_stdout_for_the_report() -> None:
    global _report
    # A closed 0, 1 or 2 (cron with >&-) would be handed to the next file we
    # open, and a stray write to "stderr" would land in it: hold them open.
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
            os.dup2(os.open(os.devnull, os.O_RDWR), fd)
    if sys.stderr is None:  # print(file=None) would write to stdout
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - fd 2 is /dev/null now
    if 1 in closed or sys.stdout is None:
        return  # nothing to protect; report_stream() says so if a report is to go there
    try:
        sys.stdout.flush()
        kept = os.dup(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        return  # no stdout at all: nothing to protect
    try:
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr
    except (OSError, ValueError, AttributeError):
        os.close(kept)
        return
    _report = open(  # noqa: SIM115 - kept open until os._exit
        kept,
        "w",
        encoding=sys.stdout.encoding,
        # A lone surrogate (a non-UTF-8 name a plugin passed on) is shown as
        # an escape rather than ending the run with UnicodeEncodeError.
        errors="backslashreplace",
        closefd=True,
    )
