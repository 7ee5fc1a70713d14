"""Rules: declarative tests that review or decline, validated at load, three-valued on gaps."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudops.decide.rules import DEFAULT_SCORES, NO_HITS, RuleOutcome, RuleSet
from fraudops.errors import ConfigError
from fraudops.features import DEFAULT_FEATURES
from fraudops.features.online import SIGNALS
from fraudops.types import Action, Transaction

NAMES = (*DEFAULT_FEATURES.names, *SIGNALS)
"""What the service lets rules test: the definition's features and the state's signals."""
ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "docs" / "rules-example.yaml"
T0 = datetime(2018, 4, 2, 12, tzinfo=UTC)


def _tx(amount: float = 42.0, *, terminal: str = "T1", customer: str = "C1") -> Transaction:
    return Transaction("tx-1", T0, customer, terminal, amount)


def _rule(when: dict[str, Any], name: str = "r", **fields: Any) -> dict[str, Any]:
    return {"name": name, "when": when, **fields}


def _rules(*rules: dict[str, Any]) -> RuleSet:
    return RuleSet.from_mapping({"rules": list(rules)}, known_features=NAMES)


def _hits(when: dict[str, Any], tx: Transaction, features: dict[str, float] | None) -> bool:
    """Whether a single rule with condition ``when`` hits; it must be evaluable."""
    outcome = _rules(_rule(when)).evaluate(tx, features)
    assert () == outcome.unevaluated
    return outcome.hits == ("r",)


# Loading


def test_packaged_default_loads_with_the_real_feature_names() -> None:
    """The shipped rule set validates against the default feature definition."""
    rules = RuleSet.load(None, known_features=NAMES)
    assert rules.rules
    assert rules.features <= set(NAMES)
    assert rules.origin.endswith("default_rules.yaml")


def test_packaged_default_has_fallback_and_always_rules() -> None:
    """The default both decides as a fallback and escalates beside the model."""
    rules = RuleSet.load(None, known_features=NAMES)
    assert {"fallback", "always"} == {rule.applies for rule in rules.rules}


def test_packaged_default_refuses_a_definition_without_its_features() -> None:
    """A feature definition lacking the default's features fails at load, not at decision."""
    with pytest.raises(ConfigError, match="unknown feature"):
        RuleSet.load(None, known_features=["amount"])


def test_documented_example_loads() -> None:
    """The annotated example in docs/ is a valid rule set for the default features."""
    rules = RuleSet.load(EXAMPLE, known_features=NAMES)
    assert str(EXAMPLE) == rules.origin
    assert rules.features <= set(NAMES)


def test_a_file_loads_like_its_mapping(tmp_path: Path) -> None:
    """A YAML file gives the same rules as the mapping it holds."""
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: big, when: {amount_at_least: 10}}\n", encoding="utf-8")
    from_file = RuleSet.load(path, known_features=NAMES)
    from_mapping = _rules(_rule({"amount_at_least": 10}, name="big"))
    assert from_mapping.rules == from_file.rules


def test_score_defaults_by_action() -> None:
    """A rule without a score reports the documented default for its action."""
    rules = _rules(
        _rule({"amount_at_least": 1}, name="r"),
        _rule({"amount_at_least": 1}, name="d", action="decline"),
    )
    assert [DEFAULT_SCORES["review"], DEFAULT_SCORES["decline"]] == [
        rule.score for rule in rules.rules
    ]


def test_an_empty_rule_set_never_hits() -> None:
    """A file with no rules is valid and says nothing about any transaction."""
    assert NO_HITS == _rules().evaluate(_tx(), None)


# Condition kinds


@pytest.mark.parametrize(
    ("when", "amount", "expected"),
    [
        ({"amount_at_least": 100}, 99.99, False),
        ({"amount_at_least": 100}, 100.0, True),
        ({"amount_above": 100}, 100.0, False),
        ({"amount_above": 100}, 100.01, True),
        ({"amount_below": 5}, 5.0, False),
        ({"amount_below": 5}, 4.99, True),
        ({"amount_at_least": 10, "amount_below": 20}, 10.0, True),
        ({"amount_above": 10, "amount_below": 20}, 10.0, False),
        ({"amount_at_least": 10, "amount_below": 20}, 20.0, False),
    ],
)
def test_amount_tests_respect_their_bounds(
    when: dict[str, float], amount: float, expected: bool
) -> None:
    """at_least includes its bound, above and below exclude theirs."""
    assert expected == _hits(when, _tx(amount), None)


@pytest.mark.parametrize(
    ("bounds", "value", "expected"),
    [
        ({"at_least": 8}, 7.0, False),
        ({"at_least": 8}, 8.0, True),
        ({"above": 8}, 8.0, False),
        ({"above": 8}, 9.0, True),
        ({"below": 0.5}, 0.5, False),
        ({"below": 0.5}, 0.49, True),
        ({"at_least": 2, "below": 5}, 4.0, True),
        ({"at_least": 2, "below": 5}, 5.0, False),
        ({"above": 2, "below": 5}, 2.0, False),
    ],
)
def test_feature_tests_respect_their_bounds(
    bounds: dict[str, float], value: float, expected: bool
) -> None:
    """A feature test compares the named feature's value with its bounds."""
    when = {"feature": "card_tx_count_1d", **bounds}
    assert expected == _hits(when, _tx(), {"card_tx_count_1d": value})


@pytest.mark.parametrize(
    ("key", "tx", "expected"),
    [
        ("terminal_in", _tx(terminal="T123"), True),
        ("terminal_in", _tx(terminal="T9"), False),
        ("customer_in", _tx(customer="007"), True),
        ("customer_in", _tx(customer="C9"), False),
    ],
)
def test_id_lists_match_exact_ids(key: str, tx: Transaction, expected: bool) -> None:
    """terminal_in and customer_in hit only the listed ids, and need no features."""
    assert expected == _hits({key: ["T123", "007"]}, tx, None)


def test_unquoted_ids_are_refused() -> None:
    """A number in an id list (YAML's reading of 007) is an error, not a silent miss."""
    with pytest.raises(ConfigError, match=r"rule 'r': when\.terminal_in: .*quote"):
        _rules(_rule({"terminal_in": [7]}))


# Combinators


@pytest.mark.parametrize(
    ("amount", "new_terminal", "expected"),
    [(300.0, 1.0, True), (299.0, 1.0, False), (300.0, 0.0, False)],
)
def test_all_needs_every_condition(amount: float, new_terminal: float, expected: bool) -> None:
    """``all`` hits only when each of its conditions holds."""
    when = {
        "all": [{"feature": "is_new_terminal_for_card", "at_least": 1}, {"amount_at_least": 300}]
    }
    assert expected == _hits(when, _tx(amount), {"is_new_terminal_for_card": new_terminal})


@pytest.mark.parametrize(
    ("amount", "night", "expected"),
    [(900.0, 0.0, True), (10.0, 1.0, True), (10.0, 0.0, False)],
)
def test_any_needs_one_condition(amount: float, night: float, expected: bool) -> None:
    """``any`` hits when at least one of its conditions holds."""
    when = {"any": [{"feature": "is_night", "at_least": 1}, {"amount_at_least": 500}]}
    assert expected == _hits(when, _tx(amount), {"is_night": night})


@pytest.mark.parametrize(("amount", "terminal", "expected"), [(9, "T1", True), (9, "T2", False)])
def test_tests_in_one_mapping_must_all_hold(amount: float, terminal: str, expected: bool) -> None:
    """Several tests in one condition mapping combine like ``all``."""
    when = {"amount_below": 10, "terminal_in": ["T1"]}
    assert expected == _hits(when, _tx(amount, terminal=terminal), None)


def test_combinators_nest() -> None:
    """``any`` inside ``all`` evaluates as written."""
    when = {
        "all": [
            {"amount_at_least": 300},
            {"any": [{"terminal_in": ["T9"]}, {"feature": "is_night", "at_least": 1}]},
        ]
    }
    results = [
        _hits(when, _tx(300, terminal="T9"), {"is_night": 0.0}),
        _hits(when, _tx(300), {"is_night": 1.0}),
        _hits(when, _tx(300), {"is_night": 0.0}),
        _hits(when, _tx(10, terminal="T9"), {"is_night": 1.0}),
    ]
    assert [True, True, False, False] == results


# Missing features


@pytest.mark.parametrize(
    "features",
    [None, {}, {"card_tx_count_1d": math.nan}],
    ids=["no-features", "key-absent", "nan"],
)
def test_a_missing_feature_leaves_the_rule_unevaluated(features: dict[str, float] | None) -> None:
    """A rule needing an absent or NaN feature neither hits nor passes silently."""
    rules = _rules(_rule({"feature": "card_tx_count_1d", "at_least": 0}, name="velocity"))
    assert RuleOutcome(None, 0.0, (), ("velocity",)) == rules.evaluate(_tx(), features)


def test_a_nan_amount_leaves_amount_rules_unevaluated() -> None:
    """An amount that is not a number is as unknown as a missing feature."""
    rules = _rules(_rule({"amount_below": 10}, name="small"))
    assert ("small",) == rules.evaluate(_tx(math.nan), None).unevaluated


def test_a_rule_false_whatever_the_missing_feature_is_false() -> None:
    """``all`` with a definitely false part is false, not unevaluated."""
    when = {"all": [{"feature": "is_night", "at_least": 1}, {"amount_at_least": 500}]}
    assert NO_HITS == _rules(_rule(when)).evaluate(_tx(10), None)


def test_a_rule_true_whatever_the_missing_feature_is_a_hit() -> None:
    """``any`` with a definitely true part hits even when another part is unknown."""
    when = {"any": [{"feature": "is_night", "at_least": 1}, {"amount_at_least": 500}]}
    assert ("r",) == _rules(_rule(when)).evaluate(_tx(900), None).hits


_DEFAULT = RuleSet.load(None, known_features=NAMES)
_FEATURE_VALUES = st.one_of(st.floats(-10, 1000), st.sampled_from([0.0, 1.0, math.nan]))


@given(
    full=st.fixed_dictionaries(dict.fromkeys(sorted(_DEFAULT.features), _FEATURE_VALUES)),
    kept=st.sets(st.sampled_from(sorted(_DEFAULT.features))),
    amount=st.floats(0, 2000),
)
def test_what_rules_decide_without_a_feature_holds_whatever_its_value(
    full: dict[str, float], kept: set[str], amount: float
) -> None:
    """Dropping features only turns results into unevaluated, never flips a hit or a miss."""
    tx = _tx(amount)
    partial = {name: value for name, value in full.items() if name in kept}
    known = _DEFAULT.evaluate(tx, partial)
    complete = _DEFAULT.evaluate(tx, full)
    decided_misses = {r.name for r in _DEFAULT.rules} - set(known.hits) - set(known.unevaluated)
    assert set(known.hits) <= set(complete.hits)
    assert set() == decided_misses & set(complete.hits)


# Combining rules


def test_the_most_severe_action_wins_and_the_highest_score() -> None:
    """Decline beats review; the score is the highest among the rules that hit."""
    rules = _rules(
        _rule({"amount_at_least": 1}, name="a", action="review", score=0.7),
        _rule({"amount_at_least": 1}, name="b", action="decline", score=0.6),
        _rule({"amount_at_least": 1000}, name="c", action="decline", score=1.0),
    )
    assert RuleOutcome(Action.DECLINE, 0.7, ("a", "b"), ()) == rules.evaluate(_tx(5), None)


def test_hits_and_unevaluated_keep_file_order() -> None:
    """Rule names come back in the order the file lists them."""
    rules = _rules(
        _rule({"amount_at_least": 1}, name="z"),
        _rule({"feature": "is_night", "at_least": 1}, name="y"),
        _rule({"amount_at_least": 1}, name="x"),
        _rule({"feature": "is_weekend", "at_least": 1}, name="w"),
    )
    outcome = rules.evaluate(_tx(5), None)
    assert (("z", "x"), ("y", "w")) == (outcome.hits, outcome.unevaluated)


def test_no_hit_gives_no_action_and_zero_score() -> None:
    """When nothing hits, the outcome carries no action and a zero score."""
    rules = _rules(_rule({"amount_at_least": 1000}, action="decline", score=0.9))
    assert RuleOutcome(None, 0.0, (), ()) == rules.evaluate(_tx(5), None)


def test_only_always_skips_fallback_rules() -> None:
    """Beside a model, only rules that apply always are evaluated."""
    rules = _rules(
        _rule({"amount_at_least": 1}, name="fallback_only", action="decline"),
        _rule({"amount_at_least": 1}, name="escalates", applies="always"),
        _rule({"feature": "is_night", "at_least": 1}, name="needs_night"),
    )
    expected = RuleOutcome(Action.REVIEW, DEFAULT_SCORES["review"], ("escalates",), ())
    assert expected == rules.evaluate(_tx(5), None, only_always=True)


# Errors


def _config_error(*rules: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        RuleSet.from_mapping({"rules": list(rules)}, known_features=NAMES, origin="my.yaml")
    return str(caught.value)


def test_unknown_key_names_file_rule_and_field() -> None:
    """A misspelt key is refused with where it is."""
    message = _config_error(_rule({"amount_at_leest": 5}, name="big"))
    assert message.startswith("my.yaml: rule 'big': when.amount_at_leest:")
    assert "Extra inputs are not permitted" in message


def test_unknown_key_in_a_nested_condition_names_its_path() -> None:
    """An error inside a combinator gives the path down to it."""
    message = _config_error(_rule({"any": [{"amount_at_least": 1}, {"featur": "x"}]}, name="n"))
    assert "rule 'n': when.any.1.featur: Extra inputs are not permitted" in message


def test_unknown_rule_key_is_refused() -> None:
    """A key a rule does not have (a typo of applies) is refused."""
    message = _config_error(_rule({"amount_at_least": 1}, name="r", aplies="always"))
    assert "rule 'r': aplies: Extra inputs are not permitted" in message


def test_unknown_feature_names_rule_and_field() -> None:
    """A feature the definition lacks fails at load and lists the known ones."""
    message = _config_error(_rule({"feature": "card_tx_count_2d", "at_least": 1}, name="v"))
    assert "my.yaml: rule 'v': when.feature: " in message
    assert "unknown feature 'card_tx_count_2d'" in message
    assert "card_tx_count_1d" in message


def test_bad_action_names_rule_and_field() -> None:
    """Only review and decline are actions a rule can take."""
    message = _config_error(_rule({"amount_at_least": 1}, name="b", action="approve"))
    assert "my.yaml: rule 'b': action: " in message


@pytest.mark.parametrize("score", [-0.1, 1.5, math.nan])
def test_score_must_be_a_probability(score: float) -> None:
    """A rule's score is a probability in [0, 1]."""
    assert "rule 's': score: " in _config_error(
        _rule({"amount_at_least": 1}, name="s", score=score)
    )


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        ({}, "at least one test"),
        ({"at_least": 3}, "need a feature"),
        ({"feature": "is_night"}, "needs at_least, above or below"),
        ({"feature": "is_night", "at_least": 1, "above": 1}, "not both"),
        ({"amount_at_least": 1, "amount_above": 1}, "not both"),
        ({"amount_at_least": 10, "amount_below": 10}, "never holds"),
        ({"all": []}, "at least 1 item"),
        ({"terminal_in": []}, "at least 1 item"),
        ({"amount_at_least": math.inf}, "finite"),
    ],
)
def test_incoherent_conditions_are_refused(when: dict[str, Any], problem: str) -> None:
    """Conditions that cannot mean anything are refused with the reason."""
    message = _config_error(_rule(when, name="c"))
    assert "rule 'c': when" in message
    assert problem in message


def test_every_bad_rule_is_reported_at_once() -> None:
    """One load reports all broken rules, each by name, so one fix round is enough."""
    message = _config_error(
        _rule({"amount_at_least": 1}, name="one", action="block"),
        _rule({"amount_at_least": 1}, name="fine"),
        _rule({"feature": "nope", "at_least": 1}, name="two"),
    )
    assert ("rule 'one'" in message, "rule 'fine'" in message, "rule 'two'" in message) == (
        True,
        False,
        True,
    )


def test_a_rule_without_a_name_is_named_by_position() -> None:
    """A nameless rule is pointed at by its position in the file."""
    message = _config_error({"when": {"amount_at_least": 1}})
    assert "rule #1: name: Field required" in message


def test_rule_names_must_be_unique() -> None:
    """Two rules with one name would make hits ambiguous."""
    message = _config_error(
        _rule({"amount_at_least": 1}, "twin"), _rule({"amount_below": 1}, "twin")
    )
    assert "my.yaml: rule names must be unique; repeated: ['twin']" == message


def test_unknown_top_level_key_is_refused() -> None:
    """Only ``rules`` may sit at the top of a rules file."""
    with pytest.raises(ConfigError, match=r"^m\.yaml: rule: Extra inputs are not permitted"):
        RuleSet.from_mapping({"rules": [], "rule": []}, known_features=NAMES, origin="m.yaml")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A configured rules file that does not exist stops the start, naming the file."""
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match=f"^{path}: no such rules file$"):
        RuleSet.load(path, known_features=NAMES)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: [\n", "not valid YAML"),
        ("- just a list\n", "expected a mapping"),
        ("rules:\n  - {name: a, name: b, when: {amount_below: 1}}\n", "found the key 'name' twice"),
    ],
    ids=["unclosed", "not-a-mapping", "duplicate-key"],
)
def test_unreadable_yaml_is_a_config_error(tmp_path: Path, text: str, problem: str) -> None:
    """Broken YAML, a non-mapping document or a key given twice name the file."""
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        RuleSet.load(path, known_features=NAMES)
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)


def test_yaml_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """Overriding a key merged in with ``<<`` is merging, not a duplicate."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - &base {name: a, action: decline, score: 0.6, when: {amount_below: 1}}\n"
        "  - {<<: *base, name: b}\n",
        encoding="utf-8",
    )
    rules = RuleSet.load(path, known_features=NAMES)
    first, second = rules.rules
    assert first.model_copy(update={"name": "b"}) == second
