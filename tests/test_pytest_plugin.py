"""The ``phone_actions`` pytest plugin, run in throwaway test sessions by ``pytester``.

The sessions are subprocesses that load the plugin through its ``pytest11`` entry point, as a
tenant's test suite would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
VONAGE = ROOT / "tenant_actions" / "vonage_sms.py"
RECORDING = ROOT / "tests" / "recordings" / "vonage_sms.jsonl"


@pytest.fixture
def tenant_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(
        f"""
        ACTION = {str(VONAGE)!r}
        RECORDING = {str(RECORDING)!r}
        """
    )
    return pytester


def test_fixtures_and_helpers_pass_on_the_unchanged_action(tenant_suite: pytest.Pytester) -> None:
    tenant_suite.makepyfile(
        """
        from conftest import ACTION, RECORDING
        from runtime.pytest_plugin import (
            assert_all_equal, assert_http_calls, assert_logs, assert_outcome,
        )

        def test_whole_recording(phone_replay):
            assert_all_equal(phone_replay.replay_action(ACTION, RECORDING))

        def test_one_event(phone_replay):
            result = phone_replay.run_action(ACTION, RECORDING, seq=1)
            assert_outcome(result, "ok", handed_off=True)
            assert_http_calls(result, [("POST", r"https://[^/]+/sms/json")])
            assert_logs(result, [])

        def test_quota_refusal(phone_replay):
            result = phone_replay.run_action(ACTION, RECORDING, seq=3)
            assert_outcome(result, "runtime_error", handed_off=True)

        def test_load_recording(load_recording):
            assert len(load_recording(RECORDING)) == 4
        """
    )
    result = tenant_suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_helpers_fail_with_the_differences_on_a_changed_action(
    tenant_suite: pytest.Pytester, tmp_path: Path
) -> None:
    changed = tmp_path / "changed.py"
    changed.write_text(VONAGE.read_text().replace('"/sms/json"', '"/sms/v2"'))
    tenant_suite.makepyfile(
        f"""
        from conftest import RECORDING
        from runtime.pytest_plugin import assert_all_equal, assert_http_calls, assert_outcome

        CHANGED = {str(changed)!r}

        def test_whole_recording(phone_replay):
            assert_all_equal(phone_replay.replay_action(CHANGED, RECORDING))

        def test_calls(phone_replay):
            result = phone_replay.run_action(CHANGED, RECORDING, seq=1)
            assert_http_calls(result, [("POST", r"https://[^/]+/sms/v2")])

        def test_outcome(phone_replay):
            assert_outcome(phone_replay.run_action(CHANGED, RECORDING, seq=1), "ok")
        """
    )
    result = tenant_suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*4 of 4 attempts differ:*",
            "*request 1: POST https://vonage-base-url.redacted.invalid/sms/v2 instead of*",
            "*not in the recording (not sent)*",
            "*outcome: expected 'ok', got 'runtime_error'*",
        ]
    )


def test_provider_fixture_and_disabling_the_plugin(tenant_suite: pytest.Pytester) -> None:
    tenant_suite.makepyfile(
        """
        import pytest
        from conftest import RECORDING

        def test_other_providers_attempts_are_skipped(phone_replay):
            report = phone_replay.replay_provider("outbox", RECORDING)
            assert (report.results, report.skipped) == ([], 4)

        def test_unknown_attempt(phone_replay):
            with pytest.raises(LookupError, match="no attempt 9"):
                phone_replay.run_action("x.py", RECORDING, seq=9)
        """
    )
    tenant_suite.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    disabled = tenant_suite.runpytest_subprocess("-p", "no:phone_actions")
    disabled.assert_outcomes(errors=2)
    disabled.stdout.fnmatch_lines(["*fixture 'phone_replay' not found*"])
