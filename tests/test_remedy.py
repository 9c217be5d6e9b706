import shlex

import pytest

from glance_features.host import DistroInfo
from glance_features.remedy import _quote, family, install_system_packages


@pytest.mark.parametrize(
    "word",
    [
        "/usr/bin/python3",
        "xattr",
        "eventlet>=0.33.3",
        "dnspython!=2.0.0,!=2.2.0",
        "it's",
        "",
        "a b",
        "$HOME",
    ],
)
def test_quote_matches_shlex(word: str) -> None:
    assert _quote(word) == shlex.quote(word)


@pytest.mark.parametrize(
    ("distro", "expected"),
    [
        (DistroInfo("pop", "22.04", "ubuntu debian"), "debian"),
        (DistroInfo("almalinux", "9", "rhel centos fedora"), "rhel"),
        (DistroInfo("opensuse-microos", "", "suse opensuse"), "suse"),
        (DistroInfo("gentoo", "", ""), None),
    ],
)
def test_family_from_id_then_like(distro: DistroInfo, expected: str | None) -> None:
    assert family(distro) == expected


def test_unknown_family_gets_generic_steps_naming_every_package() -> None:
    steps = install_system_packages({"debian": "a", "rhel": "b"}, DistroInfo("gentoo", "", ""))
    assert steps == [
        "no package is known for gentoo; install the one your distribution names "
        "like these: Debian/Ubuntu: a, RHEL/CentOS/Fedora/Rocky/Alma: b"
    ]
