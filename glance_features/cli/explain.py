"""``explain FEATURE``: what a feature is for, what it needs, and how to get it here."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from glance_features.catalog import Entry
from glance_features.model import Distro, FeatureResult
from glance_features.remediation import (
    FAMILY_NAMES,
    family,
    install_system_packages,
    pip_install,
    requirement_name,
)


@dataclass(frozen=True)
class Explanation:
    feature: str
    purpose: str
    enabled_by: list[str]
    reads: list[str]
    python: list[str]
    system_packages: dict[str, str]
    host: str
    install: list[str]
    verify: list[str]
    status: str
    required: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_text(self) -> str:
        lines = [self.feature, "", self.purpose, "", "Required when:"]
        lines += [f"  - {when}" for when in self.enabled_by] or ["  - no Glance setting needs it"]
        if self.reads:
            lines.append(f"Reads: {', '.join(self.reads)}")
        lines.append("Needs:")
        lines += [f"  - Python: {r}" for r in self.python]
        lines += [f"  - {FAMILY_NAMES[f]}: {p}" for f, p in self.system_packages.items()]
        if not self.python and not self.system_packages:
            lines.append("  - nothing to install: Python and the kernel provide it")
        lines.append(f"Install on this host ({self.host}):")
        lines += [f"  $ {step}" for step in self.install] or ["  (nothing)"]
        lines.append("Verify:")
        lines += [f"  $ {step}" for step in self.verify]
        required = "required" if self.required else "not required"
        lines += ["", f"Now: {self.status} ({required}): {self.reason}"]
        from glance_features.cli.table import safe

        # Each line escaped: a reason quoting a config value cannot forge a step.
        return "\n".join(safe(line) for line in lines) + "\n"


def explain(feature: str, need: Entry, distro: Distro, verdict: FeatureResult) -> Explanation:
    install: list[str] = []
    if need.packages:
        install += install_system_packages(need.packages, distro)
    install += [pip_install(requirement_name(r)) for r in need.python]
    fam = family(distro)
    system = " ".join(filter(None, [distro.id, distro.version])) or "unknown system"
    host = f"{system}, {FAMILY_NAMES[fam]}" if fam else f"{system}, unknown family"
    return Explanation(
        feature=feature,
        purpose=need.purpose,
        enabled_by=[row.when for row in need.required_when],
        reads=[option.label for option in need.options],
        python=list(need.python),
        system_packages=dict(need.packages),
        host=host,
        install=install,
        verify=list(need.verify) or [f"glance-features --feature {feature}"],
        status=verdict.status.value,
        required=verdict.required,
        reason=verdict.reason,
    )
