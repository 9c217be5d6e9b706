"""Keep the configuration's secrets out of every report.

Which options are secret follows their declarations: the ``secrets`` of the
detectors' catalogs (what glance_store declares ``secret=True`` for the
options they read; tests/test_redaction.py holds them to glance_store's own)
and, inside a Glance service, every option its ``ConfigOpts`` registers with
``secret=True``. Their values are replaced wherever they appear in a result,
since a reason or a detail may quote what a library said about them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from glance_features.model import JSON, FeatureResult, object_of

MASK = "***"
# Values shorter than this are not masked: a user name such as "glance"
# (glance_store declares swift_store_user secret) would garble every path and
# account name in a report, and a secret that short is no secret anyway.
MIN_LENGTH = 8


def secret_values(values: Mapping[tuple[str, str], object], names: Iterable[str]) -> frozenset[str]:
    """The values set for any option named in ``names``, in any group."""
    wanted = set(names)
    return frozenset(
        str(value)
        for (_group, name), value in values.items()
        if name in wanted and value is not None and len(str(value)) >= MIN_LENGTH
    )


def redact(result: FeatureResult, secrets: frozenset[str]) -> FeatureResult:
    if not secrets:
        return result
    return result.replace(
        reason=_text(result.reason, secrets),
        details=object_of(_value(result.details, secrets)),
        remediation=tuple(_text(step, secrets) for step in result.remediation),
    )


def _text(text: str, secrets: frozenset[str]) -> str:
    # Longest first, so a secret containing another is masked whole.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
        # A message cut short (checks bound what they say) may end in the
        # first characters of a secret: they go too.
        for length in range(len(secret) - 1, MIN_LENGTH // 2 - 1, -1):
            if text.endswith(secret[:length]):
                text = text[: len(text) - length] + MASK
                break
    return text


def _value(value: JSON, secrets: frozenset[str]) -> JSON:
    if isinstance(value, str):
        return _text(value, secrets)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and str(value) in secrets:
        return MASK
    if isinstance(value, Mapping):
        return {_text(str(k), secrets): _value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_value(v, secrets) for v in value]
    return value
