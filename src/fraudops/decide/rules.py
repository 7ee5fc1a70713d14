"""Declarative rules: named tests on a transaction and its features that review or decline.

Rules do two jobs. When no model answers, they are the fallback that decides; beside a
model, every decision records which rules hit, and rules marked ``applies: always`` also
escalate what the model decided. A rule set is a YAML file (``docs/rules-example.yaml``
explains every key; ``default_rules.yaml`` beside this module is the one shipped)::

    rules:
      - name: large_amount
        description: a payment far above what cards usually spend
        action: review          # review | decline (default review)
        score: 0.5              # the probability a decision by this rule reports
        applies: fallback       # fallback (only when no model answers) | always
        when: {amount_at_least: 500}
      - name: card_testing
        action: review
        applies: always
        when:                   # every test named in one mapping must hold
          amount_below: 5
          all:
            - {feature: card_tx_count_1h, at_least: 3}
            - {feature: is_new_terminal_for_card, at_least: 1}

A condition is a mapping of tests that must all hold: ``amount_at_least``,
``amount_above``, ``amount_below``; ``feature`` with one or more of ``at_least``, ``above``,
``below``; ``terminal_in`` and ``customer_in`` (lists of ids); ``all`` and ``any`` (lists of
conditions). Feature names are checked against the feature definition when the file loads.

A feature that is absent (no features at all, the key missing) or NaN leaves its test
unknown, and a rule whose outcome hangs on an unknown test neither hits nor silently passes:
it is reported as unevaluated. Conditions combine with three-valued logic, so a rule that is
false whatever the missing feature says (``amount_at_least: 500`` failing inside an ``all``)
is simply false, not unevaluated.

Conditions are compiled into closures when the file loads: ``evaluate`` runs on every
decision, so it does no parsing, lookup of rule kinds or allocation when nothing hits.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fraudops.errors import ConfigError, validation_problems
from fraudops.types import Action, Transaction

DEFAULT_RULES = "default_rules.yaml"
"""The rule set shipped inside ``fraudops.decide``; used when no file is configured."""

DEFAULT_SCORES: Mapping[str, float] = {"review": 0.5, "decline": 0.9}
"""A rule's score when its file gives none: between the default policy's review (0.2) and
decline (0.8) thresholds for review, above decline for decline, so a rule's decision and the
policy agree on what the score means."""

Features = Mapping[str, float]
Test = Callable[[Transaction, Features | None], bool | None]
"""A compiled condition: True, False, or None when a feature it needs is missing."""

_NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class Condition(BaseModel):
    """Tests on a transaction and its features; all the tests it names must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount_at_least: FiniteFloat | None = None
    amount_above: FiniteFloat | None = None
    amount_below: FiniteFloat | None = None
    feature: str | None = None
    at_least: FiniteFloat | None = None
    above: FiniteFloat | None = None
    below: FiniteFloat | None = None
    terminal_in: frozenset[str] | None = Field(default=None, min_length=1)
    customer_in: frozenset[str] | None = Field(default=None, min_length=1)
    all_of: tuple[Condition, ...] | None = Field(default=None, alias="all", min_length=1)
    any_of: tuple[Condition, ...] | None = Field(default=None, alias="any", min_length=1)

    @field_validator("terminal_in", "customer_in", mode="before")
    @classmethod
    def _ids_are_text(cls, ids: Any) -> Any:
        # YAML reads 007 as the number 7: an unquoted id would silently never match.
        if isinstance(ids, list) and any(not isinstance(i, str) for i in ids):
            raise ValueError("ids are text: quote each one (terminal_in: ['007'])")
        return ids

    @field_validator("feature")
    @classmethod
    def _known_feature(cls, feature: str, info: ValidationInfo) -> str:
        known = info.context.get("known_features") if isinstance(info.context, dict) else None
        if known is not None and feature not in known:
            raise ValueError(f"unknown feature {feature!r}; known: {', '.join(sorted(known))}")
        return feature

    @model_validator(mode="after")
    def _coherent(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError("a condition names at least one test (e.g. amount_at_least: 500)")
        bounds = (self.at_least, self.above, self.below)
        if self.feature is None and any(b is not None for b in bounds):
            raise ValueError("at_least, above and below need a feature to compare")
        if self.feature is not None and all(b is None for b in bounds):
            raise ValueError(f"feature {self.feature!r} needs at_least, above or below")
        _check_range("", self.at_least, self.above, self.below)
        _check_range("amount_", self.amount_at_least, self.amount_above, self.amount_below)
        return self


def _check_range(
    prefix: str, at_least: float | None, above: float | None, below: float | None
) -> None:
    if at_least is not None and above is not None:
        raise ValueError(f"give {prefix}at_least or {prefix}above, not both")
    lower = at_least if above is None else above
    if lower is not None and below is not None and lower >= below:
        raise ValueError(f"no value is at or above {lower} and below {below}: the test never holds")


class Rule(BaseModel):
    """One named rule: the action and score it gives when its condition holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME_PATTERN)
    description: str = ""
    action: Literal["review", "decline"] = "review"
    score: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    applies: Literal["fallback", "always"] = "fallback"
    when: Condition

    @model_validator(mode="before")
    @classmethod
    def _default_score(cls, data: Any) -> Any:
        if isinstance(data, dict) and "score" not in data:
            action = data.get("action", "review")
            return {**data, "score": DEFAULT_SCORES.get(action, DEFAULT_SCORES["review"])}
        return data


class _RuleFile(BaseModel):
    """The top level of a rules file; each rule is validated on its own to name it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What the rules say about one transaction.

    ``action`` is the most severe action of the rules that hit (decline over review), None
    when none hit; ``score`` the highest score among them, 0.0 when none hit. ``hits`` and
    ``unevaluated`` (rules whose outcome hung on a missing feature) keep file order.
    """

    action: Action | None
    score: float
    hits: tuple[str, ...]
    unevaluated: tuple[str, ...]


NO_HITS = RuleOutcome(action=None, score=0.0, hits=(), unevaluated=())
"""The outcome when no rule hits and every rule could be evaluated."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    name: str
    test: Test
    decline: bool
    score: float


class RuleSet:
    """An ordered, validated set of rules, compiled for evaluation on every decision."""

    def __init__(self, rules: Iterable[Rule], *, origin: str = "<rules>") -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.origin = origin
        names = [rule.name for rule in self.rules]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigError(f"{origin}: rule names must be unique; repeated: {repeated}")
        self._all = tuple(_compile_rule(rule) for rule in self.rules)
        self._always = tuple(c for c, r in zip(self._all, self.rules, strict=True) if _always(r))
        self.features: frozenset[str] = frozenset(
            name for rule in self.rules for name in _features_of(rule.when)
        )
        """The feature names the rules read."""

    @classmethod
    def load(cls, path: Path | None, *, known_features: Collection[str]) -> RuleSet:
        """The rules in the YAML file at ``path``, or the packaged default when None."""
        if path is None:
            resource = resources.files("fraudops.decide").joinpath(DEFAULT_RULES)
            origin, text = str(resource), resource.read_text(encoding="utf-8")
        else:
            origin = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError as exc:
                raise ConfigError(f"{origin}: no such rules file") from exc
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{origin}: cannot read the rules file: {exc}") from exc
        try:
            document = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no arbitrary objects
        except yaml.YAMLError as exc:
            raise ConfigError(f"{origin}: not valid YAML: {exc}") from exc
        if not isinstance(document, Mapping):
            raise ConfigError(f"{origin}: expected a mapping with a 'rules' list at the top")
        return cls.from_mapping(document, known_features=known_features, origin=origin)

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, object],
        *,
        known_features: Collection[str],
        origin: str = "<mapping>",
    ) -> RuleSet:
        """The rules in an already parsed document; ConfigError names origin, rule and field."""
        try:
            document = _RuleFile.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{origin}: {validation_problems(exc)}") from exc
        context = {"known_features": frozenset(known_features)}
        rules: list[Rule] = []
        problems: list[str] = []
        for number, raw in enumerate(document.rules, start=1):
            try:
                rules.append(Rule.model_validate(raw, context=context))
            except ValidationError as exc:
                name = raw.get("name")
                label = f"rule {name!r}" if isinstance(name, str) else f"rule #{number}"
                problems.append(f"{label}: {validation_problems(exc)}")
        if problems:
            raise ConfigError(f"{origin}: " + "; ".join(problems))
        return cls(rules, origin=origin)

    def evaluate(
        self, tx: Transaction, features: Features | None, *, only_always: bool = False
    ) -> RuleOutcome:
        """The rules' verdict on ``tx``; ``only_always`` skips fallback-only rules."""
        hits: list[str] | None = None
        unevaluated: list[str] | None = None
        decline = False
        score = 0.0
        for rule in self._always if only_always else self._all:
            result = rule.test(tx, features)
            if result is None:
                if unevaluated is None:
                    unevaluated = []
                unevaluated.append(rule.name)
            elif result:
                if hits is None:
                    hits = []
                hits.append(rule.name)
                decline = decline or rule.decline
                score = max(score, rule.score)
        if hits is None and unevaluated is None:
            return NO_HITS
        action = None if hits is None else Action.DECLINE if decline else Action.REVIEW
        return RuleOutcome(action, score, tuple(hits or ()), tuple(unevaluated or ()))


def _always(rule: Rule) -> bool:
    return rule.applies == "always"


def _features_of(condition: Condition) -> Iterable[str]:
    if condition.feature is not None:
        yield condition.feature
    for child in (condition.all_of or ()) + (condition.any_of or ()):
        yield from _features_of(child)


def _compile_rule(rule: Rule) -> _Compiled:
    return _Compiled(rule.name, _compile(rule.when), rule.action == "decline", rule.score)


def _compile(condition: Condition) -> Test:
    """One closure for a condition; tests that need no features run first, so a fallback
    without features stops at the first definite False."""
    tests: list[Test] = []
    c = condition
    if c.amount_at_least is not None or c.amount_above is not None or c.amount_below is not None:
        tests.append(_amount_test(c.amount_at_least, c.amount_above, c.amount_below))
    if c.terminal_in is not None:
        tests.append(_terminal_test(c.terminal_in))
    if c.customer_in is not None:
        tests.append(_customer_test(c.customer_in))
    if c.feature is not None:
        tests.append(_feature_test(c.feature, c.at_least, c.above, c.below))
    if c.all_of is not None:
        tests.append(_all_test([_compile(child) for child in c.all_of]))
    if c.any_of is not None:
        tests.append(_any_test([_compile(child) for child in c.any_of]))
    return tests[0] if len(tests) == 1 else _all_test(tests)


def _in_range(
    at_least: float | None, above: float | None, below: float | None
) -> Callable[[float], bool]:
    """A predicate for a (validated) range; specialised so the common one-bound case is a
    single comparison."""
    lower, strict = (above, True) if above is not None else (at_least, False)
    if below is None:
        assert lower is not None  # validation requires at least one bound
        return (lambda v: v > lower) if strict else (lambda v: v >= lower)
    if lower is None:
        return lambda v: v < below
    return (lambda v: lower < v < below) if strict else (lambda v: lower <= v < below)


def _amount_test(at_least: float | None, above: float | None, below: float | None) -> Test:
    holds = _in_range(at_least, above, below)

    def test(tx: Transaction, features: Features | None) -> bool | None:
        amount = tx.amount
        # An unusable amount is as unknown as a missing feature.
        return None if amount != amount else holds(amount)

    return test


def _feature_test(
    name: str, at_least: float | None, above: float | None, below: float | None
) -> Test:
    holds = _in_range(at_least, above, below)

    def test(tx: Transaction, features: Features | None) -> bool | None:
        if features is None:
            return None
        value = features.get(name)
        # value != value is NaN's signature, cheaper than math.isnan on the hot path.
        if value is None or value != value:
            return None
        return holds(value)

    return test


def _terminal_test(ids: frozenset[str]) -> Test:
    return lambda tx, features: tx.terminal_id in ids


def _customer_test(ids: frozenset[str]) -> Test:
    return lambda tx, features: tx.customer_id in ids


def _all_test(tests: list[Test]) -> Test:
    """Kleene AND: False if any test is False, else unknown if any is, else True."""
    parts = tuple(tests)

    def test(tx: Transaction, features: Features | None) -> bool | None:
        unknown = False
        for part in parts:
            result = part(tx, features)
            if result is None:
                unknown = True
            elif not result:
                return False
        return None if unknown else True

    return test


def _any_test(tests: list[Test]) -> Test:
    """Kleene OR: True if any test is True, else unknown if any is, else False."""
    parts = tuple(tests)

    def test(tx: Transaction, features: Features | None) -> bool | None:
        unknown = False
        for part in parts:
            result = part(tx, features)
            if result is None:
                unknown = True
            elif result:
                return True
        return None if unknown else False

    return test


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping.

    Plain YAML keeps the last of two equal keys, so ``{feature: a, at_least: 1, feature: b,
    at_least: 2}`` would silently become one test on ``b``; here it is an error instead.
    """


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # keys merged in with << may be overridden: that is what merging is for
        key = loader.construct_object(key_node)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)
