"""Issue 16, points 3 and 4: fakes add up; a forgotten or leaked one is loud."""

from __future__ import annotations

import os
import re
import stat

import fixtures
import testtools
from testtools import matchers

import glance_features
from glance_features import Settings, testing
from glance_style import base, inner, startup


class AdditiveTest(base.BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.capabilities.set(xattr=False)

    def test_a_second_fake_adds_to_the_first(self) -> None:
        self.capabilities.set(qemu_img=False)
        report = glance_features.probe()
        self.assertFalse(report.available("xattr"))
        self.assertFalse(report.available("qemu-img"))
        self.assertTrue(report.available("sendfile"))

    def test_the_latest_fake_wins_for_what_it_names(self) -> None:
        self.capabilities.set(xattr=True)
        self.assertEqual("xattr", startup.cache_driver())

    def test_overrides_nest_inside_the_fixture(self) -> None:
        with testing.override(qemu_img="degraded"):
            report = glance_features.probe()
            self.assertEqual("degraded", report["qemu-img"].status)
            self.assertFalse(report.available("xattr"))
        self.assertTrue(glance_features.probe().available("qemu-img"))

    def test_active_says_a_fake_is_in_force(self) -> None:
        self.assertTrue(testing.active())


class ForgottenFakeTest(testtools.TestCase):
    """Plain testtools: this test runs test cases and looks at their results."""

    def setUp(self) -> None:
        super().setUp()
        self.cache_dir = self.useFixture(fixtures.TempDir()).path
        # A qemu-img that leaves a mark when anything runs it.
        bin_dir = self.useFixture(fixtures.TempDir()).path
        self.marker = os.path.join(bin_dir, "ran")
        script = os.path.join(bin_dir, "qemu-img")
        with open(script, "w") as handle:
            handle.write(f"#!/bin/sh\ntouch {self.marker}\nexit 1\n")
        os.chmod(script, stat.S_IRWXU)
        path = bin_dir + os.pathsep + os.environ.get("PATH", "")
        self.useFixture(fixtures.EnvironmentVariable("PATH", path))

    def test_a_forgotten_fake_fails_loudly_and_touches_nothing(self) -> None:
        cache_dir = self.cache_dir

        class Forgot(base.BaseTestCase):
            def test_start(self) -> None:
                self.config(image_cache_driver="xattr", image_cache_dir=cache_dir)
                self.config(group="taskflow_executor", conversion_format="raw")
                startup.start()

        result = inner.run(Forgot("test_start"))
        self.assertFalse(result.wasSuccessful())
        self.assertThat(
            inner.problems(result)["test_start"],
            matchers.MatchesRegex(
                r".*RealProbeForbidden: glance_features.probe\(\) would probe this host.*"
                r"CapabilitiesFixture\(xattr='unavailable'\).*",
                re.DOTALL,
            ),
        )
        self.assertEqual([], os.listdir(cache_dir))
        self.assertFalse(os.path.exists(self.marker))

    def test_the_marks_appear_when_the_real_probe_runs(self) -> None:
        # The control for the test above: without the guard, the probe runs.
        settings = Settings(image_cache_dir=self.cache_dir, conversion_format="raw")
        report = glance_features.probe(settings, features=["qemu-img"], refresh=True)
        self.assertFalse(report.available("qemu-img"))
        self.assertTrue(os.path.exists(self.marker))

    def test_a_caught_forbidden_probe_still_fails_the_test(self) -> None:
        class Swallows(base.BaseTestCase):
            def test_start(self) -> None:
                try:
                    startup.start()
                except Exception:  # code under test that hides every error
                    pass

        result = inner.run(Swallows("test_start"))
        self.assertThat(
            inner.problems(result)["test_start"], matchers.Contains("with no fake in force")
        )


class LeakedFakeTest(testtools.TestCase):
    def test_each_leak_is_reported_where_it_was_made(self) -> None:
        class Leaks(base.BaseTestCase):
            def test_leaks_an_override(self) -> None:
                testing.override(xattr=False).__enter__()

            def test_leaks_a_fixture(self) -> None:
                testing.CapabilitiesFixture(qemu_img=False).setUp()

            def test_next(self) -> None:
                # Nothing leaked reaches this test, and its own fakes work.
                self.assertFalse(testing.active())
                self.capabilities.set(sendfile=False)
                report = glance_features.probe()
                self.assertTrue(report.available("xattr") and report.available("qemu-img"))

        result = inner.run(
            Leaks("test_leaks_an_override"),
            Leaks("test_next"),
            Leaks("test_leaks_a_fixture"),
            Leaks("test_next"),
        )
        problems = inner.problems(result)
        self.assertEqual({"test_leaks_an_override", "test_leaks_a_fixture"}, set(problems))
        for name in problems:
            self.assertThat(
                problems[name],
                matchers.Contains("LeakedFake: this test left a fake in force"),
            )
            self.assertThat(problems[name], matchers.Contains(f"in {name}"))
        self.assertEqual(4, result.testsRun)

    def test_a_leak_from_a_test_without_the_guard_is_caught_by_the_next(self) -> None:
        class Careless(testtools.TestCase):
            def test_leaks(self) -> None:
                testing.override(xattr=False).__enter__()

        class Next(base.BaseTestCase):
            def test_next(self) -> None:
                self.fail("never runs: setUp finds the leak")

        result = inner.run(Careless("test_leaks"), Next("test_next"))
        problems = inner.problems(result)
        self.assertEqual(["test_next"], list(problems))
        self.assertThat(problems["test_next"], matchers.Contains("an earlier test leaked it"))
        self.assertThat(problems["test_next"], matchers.Contains("in test_leaks"))
        self.assertFalse(testing.active())


class NestedGuardTest(base.BaseTestCase):
    def test_a_second_guard_in_the_same_test_keeps_its_fakes(self) -> None:
        # A mixin or a subclass adding its own guarded fixture is no leak.
        self.capabilities.set(qemu_img=False)
        inner_guard = self.useFixture(
            testing.CapabilitiesFixture(forbid_real_probe=True, xattr=False)
        )
        report = inner_guard.report
        self.assertFalse(report.available("qemu-img") or report.available("xattr"))
