"""What a fake result says: the detector's own words for that state.

Every detector (built-in or plugin) that follows
:class:`~glance_features.detector.DetectorBase` words its states on the fake
host in its ``fake()``, next to the sentences its ``probe()`` writes, with the
``details`` keys that ``probe()`` writes, so code under test that reads
``details["version"]`` or ``details["fs_type"]`` works under a fake. Values
that follow from the configuration (the cache directory, the output format,
the debug host) are read from the settings ``probe()`` was given.
"""

from __future__ import annotations

import functools

from glance_features import registry
from glance_features.model import FeatureResult, Status, Verdict
from glance_features.settings import Settings

MARK = " (faked by glance_features.testing)"


@functools.lru_cache(maxsize=256)
def fake(name: str, status: Status, settings: Settings) -> FeatureResult:
    """A result for ``name`` in ``status`` as its detector would word it
    (results are immutable, so tests share them: a fixture costs little)."""
    if status is Status.UNKNOWN:
        # What the runner reports for a detector that overran or raised.
        return FeatureResult(name, status, "timed out after 10 s" + MARK)
    verdict = _words_of(name, status, settings)
    reason = verdict.reason + MARK
    return FeatureResult(name, status, reason, verdict.details, tuple(verdict.remediation))


def _words_of(name: str, status: Status, settings: Settings) -> Verdict:
    """The detector's ``fake()``; for a name no loadable detector answers to
    (a plugin that fails to load, a feature only a fake declares), plain words."""
    detector: object = None
    try:
        found = registry.plugins([name])
        if found and found[0].name == name:
            detector = found[0].load()
    except Exception:  # a broken plugin must not break the tests that fake it
        detector = None
    words = getattr(detector, "fake", None)
    if callable(words):
        verdict = words(status, settings)
        if isinstance(verdict, Verdict) and verdict.status is status:
            return verdict
    fix = [] if status is Status.AVAILABLE else [f"install or configure {name}"]
    return Verdict(status, f"{name} is {status.value}", remediation=fix)
