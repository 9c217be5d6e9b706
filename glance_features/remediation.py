"""Fix steps for this host: the package manager of its distribution family."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence

from glance_features.model import Distro

# os-release ID (or ID_LIKE entry) -> family; ID is tried before ID_LIKE.
FAMILY_OF_ID = {
    "debian": "debian",
    "ubuntu": "debian",
    "linuxmint": "debian",
    "raspbian": "debian",
    "rhel": "rhel",
    "centos": "rhel",
    "fedora": "rhel",
    "rocky": "rhel",
    "almalinux": "rhel",
    "ol": "rhel",
    "oracle": "rhel",
    "opensuse": "suse",
    "opensuse-leap": "suse",
    "opensuse-tumbleweed": "suse",
    "sles": "suse",
    "suse": "suse",
    "arch": "arch",
    "manjaro": "arch",
    "alpine": "alpine",
    "macos": "macos",
}

INSTALL_COMMAND = {
    "debian": "apt-get install -y {packages}",
    "rhel": "dnf install -y {packages}",
    "suse": "zypper install -y {packages}",
    "arch": "pacman -S --needed --noconfirm {packages}",
    "alpine": "apk add {packages}",
    "macos": "brew install {packages}",
}

FAMILY_NAMES = {
    "debian": "Debian/Ubuntu",
    "rhel": "RHEL/CentOS/Fedora/Rocky/Alma",
    "suse": "SUSE",
    "arch": "Arch",
    "alpine": "Alpine",
    "macos": "macOS (Homebrew)",
}


def family(distro: Distro) -> str | None:
    for distro_id in distro.ids:
        if distro_id in FAMILY_OF_ID:
            return FAMILY_OF_ID[distro_id]
        if distro_id.startswith("opensuse"):
            return "suse"
    return None


def install_system_packages(packages: Mapping[str, str], distro: Distro) -> list[str]:
    """The command that installs ``packages[family]`` here, or generic steps."""
    fam = family(distro)
    if fam is not None and fam in packages:
        return [INSTALL_COMMAND[fam].format(packages=packages[fam])]
    label = distro.id or "this system"
    return [
        f"no package is known for {label}; install the one your distribution names "
        f"like these: " + ", ".join(f"{FAMILY_NAMES[f]}: {p}" for f, p in packages.items())
    ]


def pip_install(requirement: str | Sequence[str], python: str | None = None) -> str:
    """A pip command for the interpreter Glance runs in, not whichever is on PATH."""
    wanted = [requirement] if isinstance(requirement, str) else list(requirement)
    return f"{shlex.quote(python or sys.executable)} -m pip install " + " ".join(
        shlex.quote(r) for r in wanted
    )


def install_python_packages(
    requirements: Sequence[str],
    packages: Mapping[str, str],
    python: str,
    distro: Distro,
) -> list[str]:
    """How to give the service's interpreter these libraries, in its
    operator's language: the distribution's package for the distribution's
    own Python (pip into it is refused, PEP 668, and fights the package
    manager), pip for a virtualenv, with the package as an alternative."""
    system = install_system_packages(packages, distro) if packages else []
    if system and _distribution_python(python):
        return system
    # The markers say where a requirement applies; this host is one of those.
    wanted = [r.split(";")[0].strip() for r in requirements]
    steps = [pip_install(wanted, python)] if wanted else []
    return steps + [f"or, for a Glance from distribution packages: {step}" for step in system]


def _distribution_python(python: str) -> bool:
    return python.startswith(("/usr/bin/", "/bin/", "/usr/libexec/"))


def requirement_name(requirement: str) -> str:
    """The distribution name of a PEP 508 requirement."""
    from packaging.requirements import Requirement

    return Requirement(requirement).name
