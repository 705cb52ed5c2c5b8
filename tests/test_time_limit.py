"""The suite's time limit (tests/conftest.py): a test over `test_time_limit` seconds fails and
says how long it took; the others pass. Run in an inner pytest session with a tiny limit."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
CONFTEST = Path(__file__).with_name("conftest.py")


def test_a_test_over_the_limit_fails_with_its_time_and_the_limit(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\ntest_time_limit = 0.5\n")
    pytester.makepyfile(
        test_inner="""
        import time

        import pytest


        @pytest.fixture
        def slow_setup():
            time.sleep(0.3)


        def test_quick():
            pass


        def test_slow_in_its_call():
            time.sleep(0.7)


        def test_slow_over_setup_and_call(slow_setup):
            time.sleep(0.3)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*test_slow_in_its_call took * s (setup, call and teardown), over the 0.5 s one test may take*",
            "*test_slow_over_setup_and_call took * s*",
        ]
    )
    assert "test_quick took" not in result.stdout.str()


def test_no_limit_when_the_setting_is_zero(pytester: pytest.Pytester):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\ntest_time_limit = 0\n")
    pytester.makepyfile(test_inner="import time\n\n\ndef test_slow():\n    time.sleep(0.2)\n")
    pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider").assert_outcomes(passed=1)
