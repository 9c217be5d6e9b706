"""The default text report: what is required and what is wrong first, the rest on a line."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from conftest import run_cli

from glance_features import FeatureResult, Report, Status, testing
from glance_features.cli.render import render_text, shown_in_full

LONG = "word " * 60 + "end"


def sample() -> Report:
    base = testing.make_report(
        xattr="unavailable",
        qemu_img="unavailable",
        pydev="degraded",
        sendfile="available",
        required=["qemu-img"],
    )
    features = dict(base.items())
    features["store-swift"] = FeatureResult(
        "store-swift", Status.UNKNOWN, "probe crashed \x1b[2J" + LONG, remediation=("fix it",)
    )
    return base.replace(features)


def rows(text: str) -> dict[str, str]:
    """Feature -> its table row."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("FEATURE "))
    found = {}
    for line in lines[start + 1 :]:
        if not line or line.startswith(" "):
            if not line:
                break
            continue
        found[line.split()[0]] = line
    return found


def test_first_look_rows_and_one_line_for_the_rest() -> None:
    report = sample()
    text = render_text(report, config_note="config: test", colour=False)
    shown = rows(text)
    expected = [n for n, r in report.items() if shown_in_full(r)]
    assert set(shown) == set(expected) and {"qemu-img", "pydev", "store-swift"} <= set(shown)
    # The required ones lead.
    assert next(iter(shown)) == "qemu-img"
    rest = [n for n in report if n not in expected]
    idle = [n for n in rest if not report[n].available]
    working = [n for n in rest if report[n].available]
    assert "xattr" in idle and "sendfile" in working
    lines = text.splitlines()
    assert f"not enabled here: {', '.join(idle)} (--verbose for reasons)" in lines
    assert f"works here, not enabled: {', '.join(working)}" in lines
    # Reasons of what nothing enables are not printed.
    assert report["xattr"].reason not in text
    assert "\x1b" not in text and "\\x1b[2J" in text


def test_verbose_and_asked_features_get_their_rows() -> None:
    report = sample()
    verbose = render_text(report, config_note="c", colour=False, verbose=True)
    assert list(rows(verbose)) == list(report)  # every one, in the report's order
    assert report["xattr"].reason in verbose and "not enabled here" not in verbose
    asked = render_text(report, config_note="c", colour=False, asked=["xattr"])
    assert "xattr" in rows(asked) and "sendfile" not in rows(asked)


def test_wrapping_keeps_words_and_fix_steps_whole() -> None:
    report = sample()
    for width in (60, 80, 120):
        text = render_text(report, config_note="c", colour=False, width=width)
        for line in text.splitlines():
            if not line.startswith("    $ ") and not line.startswith("glance-features "):
                assert len(line) <= width, (width, line)
        joined = " ".join(text.split())
        assert " ".join(("probe crashed \\x1b[2J" + LONG).split()) in joined
        assert "    $ fix it" in text.splitlines()
    # Unwrapped, the reason stays on its row.
    plain = render_text(report, config_note="c", colour=False)
    assert rows(plain)["store-swift"].endswith("end")


def test_colour_marks_statuses_only() -> None:
    text = render_text(sample(), config_note="c", colour=True)
    assert "\x1b[35munknown\x1b[0m" in text and "\x1b[2J" not in text


def on_tty(args: list[str], extra: dict[str, str]) -> str:
    controller, terminal = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    child = subprocess.run(
        [sys.executable, "-m", "glance_features", *args],
        stdout=terminal,
        stderr=subprocess.PIPE,
        env={**environment, **extra},
        timeout=60,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert child.returncode in (0, 1, 2), child.stderr
    return output.decode().replace("\r\n", "\n")


def test_the_command_wraps_on_a_terminal_only() -> None:
    wide = run_cli("--verbose", "--format", "text").stdout
    longest = max(len(line) for line in wide.splitlines() if not line.startswith("    $"))
    assert longest > 72  # some reason is longer than the terminal below
    narrow = on_tty(["--verbose"], {"COLUMNS": "72", "TERM": "xterm", "NO_COLOR": "1"})
    for line in narrow.splitlines():
        if not line.startswith(("    $", "glance-features ", "config: ")):
            assert len(line) <= 72, line
    assert "\x1b[" not in narrow
    coloured = on_tty([], {"COLUMNS": "72", "TERM": "xterm"})
    assert "\x1b[3" in coloured
