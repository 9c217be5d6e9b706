import shlex

import pytest

from glance_features.detector import Distro
from glance_features.remediation import family, install_system_packages, pip_install


@pytest.mark.parametrize(
    "word",
    [
        "/usr/bin/python3",
        "xattr",
        "eventlet>=0.33.3",
        "dnspython!=2.0.0,!=2.2.0",
        "it's",
        "a b",
        "$HOME",
    ],
)
def test_pip_command_is_one_word_per_argument_for_a_shell(word: str) -> None:
    # A fix step is copy-pasted into a shell: every word must come back intact.
    python = "/opt/glance venv/bin/python"
    assert shlex.split(pip_install(word, python)) == [python, "-m", "pip", "install", word]


@pytest.mark.parametrize(
    ("distro", "expected"),
    [
        (Distro("pop", "22.04", "ubuntu debian"), "debian"),
        (Distro("almalinux", "9", "rhel centos fedora"), "rhel"),
        (Distro("opensuse-microos", "", "suse opensuse"), "suse"),
        (Distro("gentoo", "", ""), None),
    ],
)
def test_family_from_id_then_like(distro: Distro, expected: str | None) -> None:
    assert family(distro) == expected


def test_unknown_family_gets_generic_steps_naming_every_package() -> None:
    steps = install_system_packages({"debian": "a", "rhel": "b"}, Distro("gentoo", "", ""))
    assert steps == [
        "no package is known for gentoo; install the one your distribution names "
        "like these: Debian/Ubuntu: a, RHEL/CentOS/Fedora/Rocky/Alma: b"
    ]


def test_known_family_gets_its_package_manager() -> None:
    steps = install_system_packages({"debian": "qemu-utils", "rhel": "qemu-img"}, Distro("rocky"))
    assert steps == ["dnf install -y qemu-img"]
