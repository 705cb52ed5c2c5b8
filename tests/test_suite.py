"""The suite's own rules, each checked in an inner pytest session: a test over `test_time_limit`
seconds fails and says how long it took (tests/conftest.py), and tests in one `xdist_group` run on
one worker (pytest 9.2 with pytest-xdist 3.8 drops the group without a word)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
CONFTEST = Path(__file__).with_name("conftest.py")
WORKER = re.compile(r"^\[(gw\d+)\] .* PASSED test_inner.py::(\w+)")


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


def test_tests_of_one_xdist_group_run_on_one_worker(pytester: pytest.Pytester):
    tests = "".join(f"\n\ndef test_{number}():\n    time.sleep(0.05)\n" for number in range(6))
    pytester.makepyfile(
        test_inner=f'import time\n\nimport pytest\n\npytestmark = pytest.mark.xdist_group("kills")\n{tests}'
    )
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    workers = {match[1] for line in result.outlines if (match := WORKER.match(line))}
    assert len(workers) == 1, result.stdout.str()
