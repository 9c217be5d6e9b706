"""Run a test case inside a test, as testtools' own tests do, to see how a
mistake in one test is reported."""

from __future__ import annotations

import unittest

import testtools


def run(*tests: unittest.TestCase) -> testtools.TestResult:
    result = testtools.TestResult()
    for test in tests:
        test.run(result)
    return result


def problems(result: testtools.TestResult) -> dict[str, str]:
    """Test id -> the text of its failure or error."""
    return {test.id().rsplit(".", 1)[-1]: text for test, text in result.errors + result.failures}
