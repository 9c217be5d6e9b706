"""qemu-img: the binary Glance's image_conversion import plugin runs."""

from __future__ import annotations

import os
import re
import stat

from glance_features import _proc
from glance_features._record import record
from glance_features.detector import ProbeContext, result
from glance_features.model import FeatureResult, Status
from glance_features.needs import NEEDS
from glance_features.remedy import install_system_packages
from glance_features.versions import compare

# `--force-share` (-U) arrived in QEMU 2.10; `info --output=json` is older.
MINIMUM_VERSION = "2.10"
# Glance's format names where qemu-img calls a format differently.
QEMU_FORMAT = {"vhd": "vpc"}
HELP_TIMEOUT = 10.0

_VERSION_RE = re.compile(r"^qemu-img version (\d+\.\d+(?:\.\d+)?)", re.MULTILINE)
_FORMATS_RE = re.compile(r"^Supported formats:(.*)$", re.MULTILINE)


@record
class HelpFacts:
    version: str
    formats: tuple[str, ...]


def parse_help(text: str) -> HelpFacts | None:
    """Version and formats from `qemu-img --help`, or None if it is not that."""
    version = _VERSION_RE.search(text)
    formats = _FORMATS_RE.search(text)
    if version is None or formats is None:
        return None
    return HelpFacts(version.group(1), tuple(sorted(set(formats.group(1).split()))))


def find_on_path(name: str) -> str | None:
    """Like `which`, but a file that is there without execute permission is
    returned when nothing better is, so the operator learns why it fails."""
    not_executable = None
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            not_executable = not_executable or candidate
    return not_executable


def wanted_formats(context: ProbeContext) -> dict[str, str]:
    """Output formats the settings ask for -> the option asking."""
    s = context.settings
    wanted: dict[str, str] = {}
    if "image_conversion" in s.image_import_plugins:
        wanted[s.image_conversion_output_format] = "[image_conversion] output_format"
    if s.conversion_format:
        wanted.setdefault(s.conversion_format, "[taskflow_executor] conversion_format")
    return wanted


class QemuImgDetector:
    name = "qemu-img"
    summary = "qemu-img for image conversion and introspection (image_conversion plugin)"

    def probe(self, context: ProbeContext) -> FeatureResult:
        install = install_system_packages(NEEDS[self.name].packages, context.distro)
        path = find_on_path("qemu-img")
        if path is None:
            return result(
                self.name,
                Status.UNAVAILABLE,
                "qemu-img not found on PATH",
                {"path": None, "searched": os.environ.get("PATH", "")},
                install,
            )
        resolved = os.path.realpath(path)
        details: dict[str, object] = {"path": path, "resolved_path": resolved}
        timeout = min(context.remaining(), HELP_TIMEOUT)
        try:
            outcome = _proc.run([path, "--help"], timeout)
        except OSError as exc:
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"qemu-img at {path} cannot be run: {exc.strerror or exc}",
                details,
                install,
            )
        failure = outcome.describe_failure(f"{path} --help", timeout)
        if failure is not None:
            status = Status.UNKNOWN if outcome.timed_out else Status.UNAVAILABLE
            return result(self.name, status, failure, details, install)
        facts = parse_help(outcome.text)
        if facts is None:
            return result(
                self.name,
                Status.UNAVAILABLE,
                f"{path} --help did not print a qemu-img version and format list",
                details,
                install,
            )
        details.update(version=facts.version, formats=list(facts.formats))
        problems = self._problems(facts, context)
        writable = _writable_by_others(resolved)
        if writable:
            details["writable_by_others"] = writable
            problems.append(f"{writable} can be written by other users")
        if context.deep and not problems:
            deep_failure = self._deep_check(resolved, context, details)
            if deep_failure is not None:
                return result(self.name, Status.UNAVAILABLE, deep_failure, details, install)
        if problems:
            return result(
                self.name,
                Status.DEGRADED,
                f"qemu-img {facts.version} at {resolved}: " + "; ".join(problems),
                details,
                install,
            )
        return result(
            self.name, Status.AVAILABLE, f"qemu-img {facts.version} at {resolved}", details
        )

    def _problems(self, facts: HelpFacts, context: ProbeContext) -> list[str]:
        problems = []
        if compare(facts.version, MINIMUM_VERSION) < 0:
            problems.append(
                f"version {facts.version} lacks --force-share, which Glance's import "
                f"flow uses (needs {MINIMUM_VERSION} or newer)"
            )
        for fmt, option in wanted_formats(context).items():
            if QEMU_FORMAT.get(fmt, fmt) not in facts.formats:
                problems.append(f"format {fmt!r} asked for by {option} is not supported")
        return problems

    def _deep_check(
        self, qemu_img: str, context: ProbeContext, details: dict[str, object]
    ) -> str | None:
        import json
        import shutil
        import tempfile

        target = next(iter(wanted_formats(context)), "raw")
        qemu_target = QEMU_FORMAT.get(target, target)
        workdir = tempfile.mkdtemp(prefix="glance-features-qemu-")
        try:
            source = os.path.join(workdir, "source.qcow2")
            converted = os.path.join(workdir, f"converted.{target}")
            steps = [
                ("create", [qemu_img, "create", "-f", "qcow2", source, "1M"], None),
                ("info", [qemu_img, "info", "--force-share", "--output=json", source], "qcow2"),
                (
                    "convert",
                    [qemu_img, "convert", "-f", "qcow2", "-O", qemu_target, source, converted],
                    None,
                ),
                (
                    "info",
                    [qemu_img, "info", "--force-share", "--output=json", converted],
                    qemu_target,
                ),
            ]
            for label, argv, expected_format in steps:
                timeout = context.remaining()
                outcome = _proc.run(argv, timeout, cwd=workdir)
                failure = outcome.describe_failure(f"qemu-img {label}", timeout)
                if failure is not None:
                    return f"deep check failed: {failure}"
                if expected_format is not None:
                    try:
                        found = json.loads(outcome.text).get("format")
                    except (ValueError, AttributeError):
                        return f"deep check failed: qemu-img {label} printed no JSON"
                    if found != expected_format:
                        return (
                            f"deep check failed: qemu-img {label} says {found!r}, "
                            f"expected {expected_format!r}"
                        )
            details["deep_check"] = f"created qcow2, inspected it, converted it to {target}"
            return None
        except OSError as exc:
            return f"deep check failed: {exc}"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _writable_by_others(path: str) -> str | None:
    """The binary or a directory above it, if users other than root can replace it."""
    current = path
    while True:
        try:
            st = os.stat(current)
        except OSError:
            return None
        sticky = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky:
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
