"""The dashboard: figures computed in SQL, drawn as SVG with captions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from fraudops.api.ui.charts import nice_ceiling, reason_bars
from fraudops.api.ui.figures import SqlDashboardSource, window
from fraudops.clock import ManualClock
from fraudops.decide.log import SqlDecisionStore
from fraudops.review import CaseKind, CaseOpening, Role, Verdict, open_review_desk
from fraudops.types import Action
from tests.services import postgres_schema_url
from tests.unit.ui.conftest import T0, Desk, make_record, sign_in


def _judge(parts: Desk, transaction_id: str, verdict: Verdict) -> None:
    parts.desk.submit_verdict(parts.desk.current_user("lea"), transaction_id, verdict, "seen")


def _source(tmp_path: Path) -> SqlDashboardSource:
    return SqlDashboardSource(
        f"sqlite:///{tmp_path / 'decisions.db'}", f"sqlite:///{tmp_path / 'review.db'}"
    )


def test_window_ends_at_the_period_after_now() -> None:
    """The 24 h window at 09:20 runs from 10:00 the day before to 10:00, hour by hour."""
    start, end, period = window("24h", T0 + timedelta(minutes=20))
    assert (T0 - timedelta(hours=23), T0 + timedelta(hours=1), timedelta(hours=1)) == (
        start,
        end,
        period,
    )


def test_decisions_are_counted_per_hour_by_action_source_and_degraded(
    parts: Desk, tmp_path: Path
) -> None:
    """Three decisions in the last hour and one five hours back land in their hours."""
    parts.decisions.write(
        [
            make_record(1, action=Action.APPROVE),
            make_record(2, action=Action.REVIEW, source="rules"),
            make_record(3, action=Action.DECLINE),
            make_record(5 * 60 - 30, action=Action.APPROVE),
        ]
    )
    source = _source(tmp_path)
    figures = source.figures(T0, "24h")
    source.close()
    last, five_back = len(figures.periods) - 1, len(figures.periods) - 5
    assert [] == figures.problems
    assert {"approve": {last: 1, five_back: 1}, "review": {last: 1}, "decline": {last: 1}} == {
        action: {i: n for i, n in enumerate(counts) if n}
        for action, counts in figures.by_action.items()
    }
    assert ({"model": 3, "rules": 1}, 0.25) == (
        {source: sum(counts) for source, counts in figures.by_source.items()},
        figures.degraded_rate,
    )


def test_review_precision_is_the_share_of_review_verdicts_confirming_fraud(
    parts: Desk, tmp_path: Path
) -> None:
    """Three fraud and one legitimate review verdict make 75 %; audit samples count apart."""
    parts.open(*[make_record(n, card=f"c{n}") for n in range(1, 5)])
    parts.open(make_record(9, action=Action.APPROVE), kind=CaseKind.AUDIT_SAMPLE)
    for n, verdict in ((1, Verdict.FRAUD), (2, Verdict.FRAUD), (3, Verdict.FRAUD)):
        _judge(parts, f"tx-{n:04d}", verdict)
    _judge(parts, "tx-0004", Verdict.LEGITIMATE)
    _judge(parts, "tx-0009", Verdict.LEGITIMATE)
    parts.clock.advance(timedelta(minutes=1))
    source = _source(tmp_path)
    figures = source.figures(parts.clock.now(), "24h")
    source.close()
    assert (0.75, 0.0, {"fraud": 3, "legitimate": 1}) == (
        figures.review_precision,
        figures.sample_fraud_rate,
        figures.verdicts,
    )


def test_waiting_cases_are_binned_by_age(parts: Desk, tmp_path: Path) -> None:
    """Cases decided 10 min, 2 h and 2 days ago land in the <1 h, 1–4 h and >1 d bins."""
    parts.open(make_record(10), make_record(120), make_record(2 * 24 * 60))
    source = _source(tmp_path)
    figures = source.figures(T0, "24h")
    source.close()
    assert [("< 1 h", 1), ("1–4 h", 1), ("4–24 h", 0), ("> 1 d", 1)] == figures.waiting_ages


def test_a_missing_decision_log_is_reported_not_hidden(parts: Desk, tmp_path: Path) -> None:
    """With no decisions table the figures name the failure and still count the verdicts."""
    source = SqlDashboardSource(
        f"sqlite:///{tmp_path / 'empty.db'}", f"sqlite:///{tmp_path / 'review.db'}"
    )
    figures = source.figures(T0, "24h")
    source.close()
    assert (1, True) == (
        len(figures.problems),
        "decision log read decisions failed" in figures.problems[0],
    )
    assert 4 == len(figures.waiting_ages)


def test_dashboard_page_draws_every_chart_with_a_caption(client: TestClient, parts: Desk) -> None:
    """The page has five SVG charts, each in a figure with a caption, for an analyst too."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    response = client.get("/ui/dashboard")
    assert 200 == response.status_code
    assert (5, 6) == (
        response.text.count('<svg class="chart"'),
        response.text.count("<figcaption>"),
    )


def test_dashboard_refuses_an_unknown_window(client: TestClient) -> None:
    """A window other than 24h, 7d or 30d is a 422 naming the choices."""
    sign_in(client, "ann")
    response = client.get("/ui/dashboard?window=1y")
    assert 422 == response.status_code
    assert "24h, 7d, 30d" in response.text


def test_nice_ceiling_rounds_up_to_one_two_or_five() -> None:
    """Axis tops are 1, 2 or 5 times a power of ten."""
    assert [1.0, 2.0, 5.0, 10.0, 200.0, 1.0] == [
        nice_ceiling(v) for v in (0.7, 1.3, 4.2, 7.0, 101.0, 0.0)
    ]


def test_reason_chart_escapes_codes() -> None:
    """A reason code with markup in it is drawn as text, not markup."""
    svg = str(reason_bars([("<script>", 0.2)]))
    assert ("&lt;script&gt;" in svg, "<script>" in svg) == (True, False)


def test_figures_are_the_same_on_postgresql() -> None:
    """On PostgreSQL the hours, the degraded rate and the verdict mix come out as on SQLite."""
    with postgres_schema_url() as url:
        clock = ManualClock(T0)
        desk = open_review_desk(
            url, clock, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        )
        log = SqlDecisionStore(url)
        records = [
            make_record(1, action=Action.APPROVE),
            make_record(2, action=Action.REVIEW, source="rules"),
            make_record(5 * 60 - 30, action=Action.REVIEW, card="c2"),
        ]
        log.write(records)
        desk.cases.open_cases([CaseOpening(r, CaseKind.REVIEW, T0) for r in records[1:]], T0)
        lead = desk.users.add("lea", Role.LEAD, "correct horse battery", by="test", now=T0)
        desk.submit_verdict(lead, "tx-0002", Verdict.FRAUD, "")
        source = SqlDashboardSource(url, url)
        try:
            figures = source.figures(T0 + timedelta(minutes=1), "24h")
        finally:
            source.close()
            log.close()
            desk.close()
    last = len(figures.periods) - 2  # 08:00-09:00; the window runs on to 10:00
    assert [] == figures.problems
    assert ({"approve": {last: 1}, "review": {last: 1, last - 4: 1}}, 1 / 3, {"fraud": 1}) == (
        {a: {i: n for i, n in enumerate(c) if n} for a, c in figures.by_action.items()},
        figures.degraded_rate,
        figures.verdicts,
    )
