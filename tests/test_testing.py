"""The test doubles, used the way Glance's and plugin authors' tests use them."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import unittest
from pathlib import Path

import pytest
from conftest import need, validate

import glance_features
from glance_features import FeatureResult, Settings, Status, runner, testing
from glance_features.testing import _layers

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
pytest_plugins = ["pytester"]

# Settings that make each built-in feature required, as an operator writes them.
REQUIRING = {
    "xattr": Settings(image_cache_driver="xattr", image_cache_dir="/srv/glance/cache"),
    "qemu-img": Settings(image_import_plugins=["image_conversion"]),
    "pydev": Settings(pydev_worker_debug_host="127.0.0.1"),
}


@pytest.fixture(autouse=True)
def no_fake_left_behind() -> None:
    assert not testing.active() and not runner.overridden()


def test_make_report_defaults_to_everything_available() -> None:
    report = testing.make_report()
    validate(report)
    assert set(testing.BUILTIN_FEATURES) <= set(report)
    assert all(r.status is Status.AVAILABLE for r in report.values())
    assert report.code == 0


def test_make_report_accepts_every_value_form() -> None:
    custom = FeatureResult("ignored-name", Status.DEGRADED, "custom reason", {"k": 1})
    report = testing.make_report(
        {"qemu-img": "unavailable"},
        xattr=False,
        sendfile=True,
        dnspython_ipv6=custom,
        pydev=testing.result("degraded", reason="my words"),
        extra={"acme": Status.UNKNOWN},
        required=["qemu-img", "dnspython-ipv6"],
    )
    validate(report)
    assert report["qemu-img"].status is Status.UNAVAILABLE and report["qemu-img"].required
    assert report["acme"].status is Status.UNKNOWN
    assert report["xattr"].status is Status.UNAVAILABLE
    assert report["sendfile"].status is Status.AVAILABLE
    assert report["pydev"].status is Status.DEGRADED and report["pydev"].reason == "my words"
    assert report["dnspython-ipv6"].reason == "custom reason"
    assert report["dnspython-ipv6"].name == "dnspython-ipv6"
    assert report.code == 2
    # Plausible text, so code that logs the first fix step works.
    assert report["qemu-img"].remediation == ("apt-get install -y qemu-utils",)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"qemu_img": "great"}, ValueError, "'great' is not a status"),
        ({"xattr": 3.5}, ValueError, "3.5 is not a status"),
        ({"qemu_im": False}, testing.UnknownFakeFeature, "did you mean 'qemu-img'"),
        ({"required": ["qemu_img"]}, testing.UnknownFakeFeature, "did you mean 'qemu-img'"),
        ({"required": "xattr-qemu-img"}, TypeError, "a list of feature names"),
        ({"required": [1]}, TypeError, "1 is not a feature name"),
        ({"glance_version": 33}, TypeError, "glance_version"),
    ],
)
def test_mistakes_raise_where_they_are_written(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        testing.override(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        testing.make_report(**kwargs)  # type: ignore[arg-type]


def test_unknown_name_in_the_mapping_is_an_error_unless_declared() -> None:
    with pytest.raises(testing.UnknownFakeFeature, match=r"'acme'.*extra="):
        testing.override({"acme": False})
    with testing.override(extra={"acme": True}), testing.override({"acme": False}):
        # Declared by the outer fake, so an inner one may change it.
        assert not glance_features.probe().available("acme")


def test_result_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="not a status"):
        testing.result("fine")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of strings"):
        testing.result("degraded", remediation="do this")
    with pytest.raises(ValueError, match="not JSON data"):
        testing.result("degraded", details={"when": object()})


def test_overrides_add_up_and_unwind() -> None:
    real = glance_features.probe(features=["sendfile"])
    with testing.override(qemu_img="unavailable") as outer:
        assert glance_features.probe() == outer
        with testing.override(xattr="degraded"):
            inner = glance_features.probe()
            assert inner["qemu-img"].status is Status.UNAVAILABLE  # kept from outside
            assert inner["xattr"].status is Status.DEGRADED
        assert glance_features.probe()["xattr"].status is Status.AVAILABLE
        only = glance_features.probe(features=["qemu-img"])
        assert list(only) == ["qemu-img"]
        with pytest.raises(glance_features.UnknownFeature):
            glance_features.probe(features=["nope"])
    assert glance_features.probe(features=["sendfile"]) is real


def test_overrides_left_out_of_order_leave_the_rest_in_force() -> None:
    first = testing.override(xattr=False)
    second = testing.override(qemu_img=False)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    report = glance_features.probe()
    assert report.available("xattr") and not report.available("qemu-img")
    second.__exit__(None, None, None)
    assert not testing.active()


@pytest.mark.parametrize("feature", sorted(REQUIRING))
def test_settings_require_a_faked_feature_as_they_require_a_real_one(feature: str) -> None:
    settings = REQUIRING[feature]
    real = glance_features.probe(settings, features=[feature])[feature]
    with testing.override({feature: "unavailable"}):
        fake = glance_features.probe(settings, features=[feature])[feature]
    assert (fake.required, fake.used_by_glance) == (real.required, real.used_by_glance)
    assert fake.details.get("required_by") == real.details.get("required_by")
    assert fake.code == (2 if real.required else 0)


def test_the_faked_glance_version_decides_what_is_required() -> None:
    settings = REQUIRING["pydev"]
    old = testing.make_report(pydev=False, glance_version="32.0.0", settings=settings)
    new = testing.make_report(pydev=False, glance_version="33.0.0", settings=settings)
    assert old["pydev"].required and old.code == 2 and old.glance == {"version": "32.0.0"}
    # Glance 33 no longer calls its pydev hook: the setting requires nothing.
    assert not new["pydev"].required and new.code == 0
    assert "ignored_by_glance" in new["pydev"].details
    # A fake stands for a service process: 32 as its glance-api runs it.
    assert (old["pydev"].used_by_glance, new["pydev"].used_by_glance) == (True, False)
    none = testing.make_report(glance_version=None)
    assert none.glance is None and none["pydev"].used_by_glance is None


def test_check_startup_refuses_to_start_on_a_faked_missing_requirement(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = REQUIRING["xattr"]
    with (
        testing.override(xattr="unavailable"),
        caplog.at_level(logging.INFO),
        pytest.raises(glance_features.FeatureUnavailable, match="xattr"),
    ):
        glance_features.check_startup(settings)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "xattr is unavailable (required)" in errors[0]


GLANCE_PYTHON = os.path.join(os.environ.get("GLANCE_VENV", "/nonexistent"), "bin", "python")
# Real states of each detector on this host, side by side with the fake of that state.
STATES = [
    ("qemu-img", Status.AVAILABLE, {"python_interpreter": GLANCE_PYTHON}, None),
    ("qemu-img", Status.DEGRADED, {"image_import_plugins": ["image_conversion"]}, None),
    ("qemu-img", Status.UNAVAILABLE, {}, "/nonexistent"),
    ("sendfile", Status.AVAILABLE, {}, None),
    ("xattr", Status.AVAILABLE, {"image_cache_dir": "/var/tmp"}, None),
    ("xattr", Status.UNAVAILABLE, {"image_cache_dir": "/sys/kernel"}, None),
    ("pydev", Status.AVAILABLE, {}, None),
    ("dnspython-ipv6", Status.AVAILABLE, {}, None),
]


@pytest.mark.parametrize(("feature", "status", "options", "path"), STATES)
def test_fake_details_have_the_keys_a_real_probe_writes(
    feature: str,
    status: Status,
    options: dict[str, str],
    path: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    need(os.access(GLANCE_PYTHON, os.X_OK), "GLANCE_VENV: a venv with Glance (tests/run.sh)")
    if path is not None:
        monkeypatch.setenv("PATH", path)
    settings = Settings(**options)  # type: ignore[arg-type]
    real = glance_features.probe(settings, features=[feature], refresh=True)[feature]
    assert real.status is status, real.reason  # the host state this case compares
    with testing.override({feature: status}):
        fake = glance_features.probe(settings, features=[feature])[feature]
    assert set(real.details) <= set(fake.details)
    assert (not fake.remediation) == (not real.remediation)


def test_fakes_read_what_the_settings_say() -> None:
    settings = Settings(image_cache_dir="/srv/cache", conversion_format="qcow2")
    with testing.override():
        report = glance_features.probe(settings)
    assert report["xattr"].details["image_cache_dir"] == "/srv/cache"
    assert report["qemu-img"].details["output_format"] == "qcow2"
    formats = report["qemu-img"].details["formats"]
    assert isinstance(formats, tuple) and "qcow2" in formats


def test_failure_inside_override_leaves_probe_real() -> None:
    @testing.override(sendfile="unavailable")
    def failing_test() -> None:
        assert not glance_features.probe().available("sendfile")
        raise AssertionError("the test failed")

    with pytest.raises(AssertionError, match="the test failed"):
        failing_test()
    assert not testing.active()


def test_override_on_a_class_wraps_each_test_method() -> None:
    seen: list[bool] = []

    class Base(unittest.TestCase):
        def test_inherited(self) -> None:
            seen.append(glance_features.probe().available("xattr"))

    @testing.override(xattr=False)
    class Case(Base):
        def test_one(self) -> None:
            seen.append(glance_features.probe().available("xattr"))

        def helper(self) -> bool:
            return testing.active()

    assert isinstance(Case, type)
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Case).run(result)
    assert result.testsRun == 2 and result.wasSuccessful()
    assert seen == [False, False]
    assert not Case("test_one").helper()
    assert not testing.active()


def test_override_refuses_what_it_cannot_wrap() -> None:
    class NoTests:
        def run(self) -> None: ...

    with pytest.raises(TypeError, match="no test\\* method"):
        testing.override(xattr=False)(NoTests)
    with pytest.raises(TypeError, match="not 3"):
        testing.override(xattr=False)(3)


def test_override_on_a_coroutine_holds_while_it_runs() -> None:
    @testing.override(qemu_img=False)
    async def check() -> bool:
        await asyncio.sleep(0)
        return glance_features.probe().available("qemu-img")

    assert asyncio.run(check()) is False
    assert not testing.active()


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
        with testing.override(qemu_img=False):
            assert not glance_features.probe().available("pydev")
    with pytest.raises(TypeError):
        testing.override(fake, pydev=True)


def test_a_report_from_json_keeps_its_glance_version() -> None:
    saved = testing.make_report(glance_version="32.0.0").to_dict()
    with testing.override(glance_features.Report.from_dict(saved)):
        report = glance_features.probe(REQUIRING["pydev"])
    assert report.glance == {"version": "32.0.0"} and report["pydev"].required


def test_real_probes_forbidden_unless_faked() -> None:
    guard = _layers.Layer(guard=True, where="here")
    _layers.enter_guard(guard)
    try:
        with pytest.raises(testing.RealProbeForbidden, match="CapabilitiesFixture\\(xattr="):
            glance_features.probe()
        with testing.override(xattr=False):
            assert not glance_features.probe().available("xattr")
    finally:
        # The caught attempt still fails the test at clean-up.
        with pytest.raises(testing.RealProbeForbidden, match="even if the code under test caught"):
            _layers.exit_guard(guard)
    assert not runner.overridden()


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
    assert "Ran 3 tests" in proc.stderr and "OK" in proc.stderr


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
    assert "Ran 3 tests" in proc.stdout + proc.stderr


def test_pytest_example_as_documented(pytester: pytest.Pytester) -> None:
    copy_examples(pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_pytest_example.py")
    result.assert_outcomes(passed=3)


def test_pytest_plugin_is_not_loaded_unless_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(glance_features_override):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'glance_features_override' not found*"])


def test_pytest_fixtures_undo_fakes_and_forbid_real_probes(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        pytest_plugins = ["glance_features.testing.pytest_plugin"]

        @pytest.fixture(autouse=True)
        def _no_real_probe(glance_features_no_real_probe):
            pass
        """
    )
    pytester.makepyfile(
        """
        import glance_features
        from glance_features import testing

        def test_fails_inside(glance_features_override):
            glance_features_override(sendfile=False)
            glance_features_override(xattr=False)
            report = glance_features.probe()
            assert not report.available("sendfile") and not report.available("xattr")
            assert False, "the test failed"

        def test_forgot_to_fake():
            glance_features.probe()

        def test_leaks():
            testing.override(xattr=False).__enter__()

        def test_after():
            assert not testing.active()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    # The forgotten fake fails the test, and again at teardown in case the code
    # under test caught the error; the leak fails the test that leaked it.
    result.assert_outcomes(passed=2, failed=2, errors=2)
    result.stdout.fnmatch_lines(
        ["*testing.RealProbeForbidden: glance_features.probe() would probe this host*"]
    )
    result.stdout.fnmatch_lines(
        ["*testing.LeakedFake: this test left a fake in force (removed now), made at *test_leaks*"]
    )


def test_fixture_without_the_fixtures_library_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['fixtures'] = None\n"
        "from glance_features import testing\n"
        "try:\n    testing.CapabilitiesFixture\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install fixtures" in proc.stdout


TYPED_USE = """
from glance_features import Status
from glance_features.testing import CapabilitiesFixture, make_report, override, result


class Capabilities(CapabilitiesFixture):
    def broken(self) -> bool:
        return self.report.available("xattr")


fixture = Capabilities(forbid_real_probe=True)
reveal_type(fixture.set(xattr="unavailable"))
make_report(qemu_img=result(Status.DEGRADED, details={"version": "6.2.0"}))
override(xattr=3.5)
override(qemu_im=False)
"""


def test_the_documented_imports_are_typed_for_mypy_strict(tmp_path: Path) -> None:
    from mypy import api

    use = tmp_path / "use.py"
    use.write_text(TYPED_USE)
    out, err, code = api.run(
        ["--strict", "--config-file", "/dev/null", "--cache-dir", str(tmp_path / "c"), str(use)]
    )
    lines = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(str(use))]
    assert code == 1, out + err
    assert len(lines) == 4 and lines[0] == 'note: Revealed type is "glance_features.model.Report"'
    assert lines[1].startswith('error: Argument "xattr" to "override" has incompatible type')
    assert lines[2].startswith('error: Unexpected keyword argument "qemu_im" for "override"')


FAKES_TOUCH_NOTHING = """
import json, sys
from glance_features import registry
from glance_features.model import Status
from glance_features.settings import Settings
from glance_features.testing import _details
for name in registry.BUILTIN:  # their modules imported first: imports read files
    registry.builtin_detector(name)
seen = []
watching = ("open", "os.listdir", "os.scandir", "glob.glob", "subprocess.Popen",
            "os.exec", "os.fork", "os.posix_spawn", "socket.connect", "socket.getaddrinfo")
import os
# Python finding and reading its own modules (a lazy import) is not the host.
python_dirs = tuple(os.path.realpath(p or ".") for p in (*sys.path, sys.prefix, sys.base_prefix))
def imports(event, args):
    if event not in ("open", "os.listdir", "os.scandir") or not isinstance(args[0], str):
        return False
    path = os.path.realpath(args[0] or ".")
    return any(path == d or path.startswith(d + os.sep) for d in python_dirs)
def hook(event, args):
    if event in watching and not imports(event, args):
        seen.append(f"{event} {args!r}"[:200])
stores = {"a": "file", "b": "s3", "c": "cinder", "d": "rbd", "e": "swift", "f": "vmware"}
configured = Settings(image_cache_driver="xattr", image_cache_dir="/srv/cache",
                      pydev_worker_debug_host="192.0.2.1", enabled_backends=stores,
                      image_import_plugins=("image_conversion", "image_decompression"))
sys.addaudithook(hook)
for settings in (Settings(), configured):
    for name in registry.BUILTIN:
        for status in Status:
            _details.fake(name, status, settings)
print(json.dumps(seen))
"""


def test_fakes_never_read_the_machine_they_run_on() -> None:
    """Every built-in's fake, in every status, with and without a configuration:
    no file opened, directory listed, process started or address looked up, so
    a fake says the same on every CI host."""
    proc = subprocess.run(
        [sys.executable, "-c", FAKES_TOUCH_NOTHING],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
