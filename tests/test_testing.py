"""The test doubles, used the way Glance's and plugin authors' tests use them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import validate

import glance_features
from glance_features import FeatureResult, Status, testing

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
pytest_plugins = ["pytester"]


def test_make_report_defaults_to_everything_available() -> None:
    report = testing.make_report()
    validate(report)
    assert set(testing.BUILTIN_FEATURES) <= set(report)
    assert all(r.status is Status.AVAILABLE for r in report.values())
    assert report.code == 0


def test_make_report_accepts_every_value_form() -> None:
    custom = FeatureResult("ignored-name", Status.DEGRADED, "custom reason", {"k": 1})
    report = testing.make_report(
        {"qemu-img": "unavailable", "acme": Status.UNKNOWN},
        xattr=False,
        sendfile=True,
        dnspython_ipv6=custom,
        pydev="DEGRADED",
        required=["qemu-img", "dnspython-ipv6"],
    )
    validate(report)
    assert report["qemu-img"].status is Status.UNAVAILABLE and report["qemu-img"].required
    assert report["acme"].status is Status.UNKNOWN
    assert report["xattr"].status is Status.UNAVAILABLE
    assert report["sendfile"].status is Status.AVAILABLE
    assert report["pydev"].status is Status.DEGRADED
    assert report["dnspython-ipv6"].reason == "custom reason"
    assert report["dnspython-ipv6"].name == "dnspython-ipv6"
    assert report.code == 2
    # Plausible text, so code that logs the first fix step works.
    assert report["qemu-img"].remediation and "qemu-img" in report["qemu-img"].reason


def test_make_report_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="'great' is not a status"):
        testing.make_report(qemu_img="great")


def test_override_as_context_manager_nests_and_unwinds() -> None:
    real = glance_features.probe(features=["sendfile"])
    with testing.override(qemu_img="unavailable") as outer:
        assert glance_features.probe() is outer
        with testing.override(qemu_img="degraded"):
            assert glance_features.probe()["qemu-img"].status is Status.DEGRADED
        assert glance_features.probe()["qemu-img"].status is Status.UNAVAILABLE
        only = glance_features.probe(features=["qemu-img"])
        assert list(only) == ["qemu-img"]
        with pytest.raises(glance_features.UnknownFeature):
            glance_features.probe(features=["nope"])
    assert glance_features.probe(features=["sendfile"]) is real


def test_failure_inside_override_leaves_probe_real() -> None:
    @testing.override(sendfile="unavailable")
    def failing_test() -> None:
        assert not glance_features.probe().available("sendfile")
        raise AssertionError("the test failed")

    with pytest.raises(AssertionError, match="the test failed"):
        failing_test()
    assert glance_features.probe(features=["sendfile"])["sendfile"].reason.startswith("sent ")


def test_other_threads_see_the_override() -> None:
    seen: list[Status] = []
    with testing.override(xattr="unknown"):
        thread = threading.Thread(
            target=lambda: seen.append(glance_features.probe()["xattr"].status)
        )
        thread.start()
        thread.join()
    assert seen == [Status.UNKNOWN]


def test_override_accepts_a_ready_report() -> None:
    fake = testing.make_report(pydev=False)
    with testing.override(fake):
        assert glance_features.probe() == fake
    with pytest.raises(TypeError):
        testing.override(fake, pydev=True)


def copy_examples(tmp_path: Path) -> Path:
    for example in EXAMPLES.glob("*.py"):
        shutil.copy(example, tmp_path)
    return tmp_path


def test_unittest_example_as_documented(tmp_path: Path) -> None:
    directory = copy_examples(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "unittest", "-v", "test_unittest_example"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Ran 2 tests" in proc.stderr and "OK" in proc.stderr


def test_testtools_example_as_documented(tmp_path: Path) -> None:
    directory = copy_examples(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "testtools.run", "test_testtools_example"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Ran 2 tests" in proc.stdout + proc.stderr


def test_pytest_example_as_documented(pytester: pytest.Pytester) -> None:
    copy_examples(pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_pytest_example.py")
    result.assert_outcomes(passed=2)


def test_pytest_plugin_is_not_loaded_unless_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(glance_features_override):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'glance_features_override' not found*"])


def test_pytest_fixture_undoes_its_override(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["glance_features.testing.pytest_plugin"]\n')
    pytester.makepyfile(
        """
        import glance_features

        def test_fails_inside(glance_features_override):
            glance_features_override(sendfile=False)
            assert False, "the test failed"

        def test_after(glance_features_override):
            result = glance_features.probe(features=["sendfile"])["sendfile"]
            assert result.reason.startswith("sent ")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)


def test_fixture_without_the_fixtures_library_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['fixtures'] = None\n"
        "from glance_features import testing\n"
        "try:\n    testing.CapabilitiesFixture\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install fixtures" in proc.stdout
