"""From a card to the task's table: which local column is which concept, in which unit.

The result is the `FeatureMapping` the institution's ClientApp applies before training.
What the card lacks or leaves ambiguous is reported, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rdflib import URIRef

from fl_client.data.mapping import ColumnRule, FeatureMapping
from fl_client.tasks.base import Task
from knowledge_graph.cards import Card, FeatureCard, concept_curie, concept_ref
from knowledge_graph.concepts import column_concept
from knowledge_graph.errors import KGError
from knowledge_graph.units import conversion, unit


@dataclass
class Alignment:
    mapping: FeatureMapping
    missing: list[str] = field(default_factory=list)  # task columns no local column represents
    ambiguous: list[str] = field(default_factory=list)  # task columns two local columns claim
    problems: list[str] = field(default_factory=list)  # units or categories that do not fit

    @property
    def ok(self) -> bool:
        return not (self.missing or self.ambiguous or self.problems)

    def reasons(self) -> list[str]:
        out = [f"no column for concept {c}" for c in self.missing]
        out += [f"two columns claim concept {c}" for c in self.ambiguous]
        return out + self.problems


def align(task: Task, card: Card) -> Alignment:
    by_concept: dict[str, list[FeatureCard]] = {}
    for f in (*card.features, card.label):
        by_concept.setdefault(str(concept_ref(f.concept)), []).append(f)
    rules: dict[str, ColumnRule] = {}
    result = Alignment(FeatureMapping({}))
    for col in (*task.schema.columns, task.schema.target):
        concept = str(column_concept(task, col.name))
        found = by_concept.get(concept, [])
        if not found:
            result.missing.append(concept_curie(URIRef(concept)))
            continue
        if len(found) > 1:
            result.ambiguous.append(concept_curie(URIRef(concept)))
            continue
        f = found[0]
        try:
            rules[col.name] = _rule(col.kind, col.unit, col.categories, f)
        except KGError as exc:
            result.problems.append(f"column {f.column!r}: {exc}")
    result.mapping = FeatureMapping(rules)
    return result


def _rule(
    kind: str, task_unit: str | None, categories: tuple[str, ...], f: FeatureCard
) -> ColumnRule:
    if kind == "categorical":
        if f.unit is not None:
            raise KGError(f"has unit {f.unit!r} but its concept is categorical; drop the unit")
        if not f.values:
            return ColumnRule(source=f.column)
        unknown = sorted(set(f.values.values()) - set(categories))
        if unknown:
            raise KGError(f"recodes onto {unknown[0]!r}, which the task does not know")
        identity = {c: c for c in categories}
        return ColumnRule(source=f.column, recode={**identity, **f.values})
    if f.values:
        raise KGError("recodes values but its concept is numeric; drop `values` or fix the concept")
    scale, offset = conversion(unit(f.unit), unit(task_unit))
    return ColumnRule(source=f.column, scale=scale, offset=offset)
