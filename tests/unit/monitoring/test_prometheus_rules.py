"""The Prometheus config and alert rules in deploy/prometheus are valid and unit-tested."""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from tests.services import require_program
from tests.unit.monitoring.prometheus_server import PROMETHEUS_DIR
from tests.unit.monitoring.prometheus_server import RULES_FILE as RULES

RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
EXPECTED_ALERTS = {
    "FraudopsFallbackRateHigh",
    "FraudopsLatencySLOBurn",
    "FraudopsTrafficStopped",
    "FraudopsScoreDistributionCollapsed",
    "FraudopsDeadLetterGrowth",
    "FraudopsCircuitBreakerOpen",
    "FraudopsDecisionLogSpilling",
    "FraudopsModelSwapFailed",
    "FraudopsRetriesAnsweredByStandIns",
    "FraudopsChampionsDiffer",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool with ``args`` in deploy/prometheus and return the finished process."""
    program = require_program("promtool", "prometheus")
    return subprocess.run(
        [program, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120
    )


def alert_rules() -> list[dict[str, Any]]:
    """The alerting rules of the rules file."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_config_is_valid() -> None:
    """promtool accepts prometheus.yml and the rule files it names."""
    result = promtool("check", "config", "prometheus.yml")
    assert 0 == result.returncode, result.stdout + result.stderr


def test_rules_are_valid() -> None:
    """promtool accepts the recording and alerting rules."""
    result = promtool("check", "rules", str(RULES.relative_to(PROMETHEUS_DIR)))
    assert 0 == result.returncode, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    """Every promtool rule unit test in deploy/prometheus/tests passes."""
    files = [str(path.relative_to(PROMETHEUS_DIR)) for path in RULE_TESTS]
    result = promtool("test", "rules", *files)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_every_alert_is_documented() -> None:
    """The expected alerts exist, each with a severity, a summary and a description."""
    rules = alert_rules()
    assert EXPECTED_ALERTS == {rule["alert"] for rule in rules}
    incomplete = [
        rule["alert"]
        for rule in rules
        if rule["labels"].get("severity") not in {"page", "ticket"}
        or not {"summary", "description"} <= set(rule["annotations"])
    ]
    assert [] == incomplete


def test_every_alert_has_firing_and_quiet_cases() -> None:
    """Each alert is tested both where it must fire and where it must stay quiet."""
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case["alert_rule_test"]:
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    # A misspelt alert name would pass as quiet, so names must be real ones too.
    assert (EXPECTED_ALERTS, EXPECTED_ALERTS) == (firing, quiet)
