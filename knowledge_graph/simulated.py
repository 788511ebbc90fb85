"""Simulated institutions that describe their data in their own words.

`localize` turns a partition in the task's canonical columns into the table one institution
would really hold (its own column names, units and category codes) plus the card that
explains it. Deterministic by institution index and seed, so a scenario always looks the same:

- index % 3 == 0: the task's own names and units;
- index % 3 == 1: German column names and codes (credit) or `pat_`-prefixed names (medical);
- index % 3 == 2: amounts in thousands of euro, durations in years, grey levels 0-255,
  short category codes, upper-case names.
"""

from __future__ import annotations

import pandas as pd

from fl_client.tasks import get_task
from knowledge_graph.cards import Card, FeatureCard, noised_counts
from knowledge_graph.concepts import scheme_of
from knowledge_graph.units import scale_between, unit

COUNT_EPSILON = 1.0
KINDS = {"finance": "bank", "medical": "hospital", "imaging": "hospital"}

_GERMAN = {
    "status_of_existing_checking_account": "kontostand",
    "duration_in_month": "laufzeit_monate",
    "credit_history": "kredithistorie",
    "purpose": "verwendungszweck",
    "credit_amount": "kreditbetrag_dm",
    "savings_account_and_bonds": "sparguthaben",
    "present_employment_since": "beschaeftigt_seit",
    "installment_rate_in_percentage_of_disposable_income": "ratenhoehe_prozent",
    "personal_status_and_sex": "familienstand_geschlecht",
    "other_debtors_or_guarantors": "buergen",
    "present_residence_since": "wohnhaft_seit_jahren",
    "property": "vermoegen",
    "age_in_years": "alter",
    "other_installment_plans": "weitere_ratenkredite",
    "housing": "wohnsituation",
    "number_of_existing_credits_at_this_bank": "anzahl_kredite",
    "job": "beruf",
    "number_of_people_being_liable_to_provide_maintenance_for": "unterhaltspflichtige",
    "telephone": "telefon",
    "foreign_worker": "gastarbeiter",
    "creditability": "kreditwuerdigkeit",
}
_GERMAN_LABEL = {"good": "gut", "bad": "schlecht"}
# Variant 2 reports these columns in other units.
_OTHER_UNITS = {
    "Deutsche Mark": "thousand euro",
    "month": "year",
    "intensity (0-16)": "intensity (0-255)",
}


def localize(
    df: pd.DataFrame, task_name: str, institution_index: int, institution: str, seed: int
) -> tuple[pd.DataFrame, Card]:
    task = get_task(task_name)
    scheme = scheme_of(task)
    variant = institution_index % 3
    out: dict[str, pd.Series] = {}
    features: list[FeatureCard] = []
    label: FeatureCard | None = None
    for col in (*task.schema.columns, task.schema.target):
        concept = f"{scheme}:{col.name}"
        series = df[col.name]
        name, col_unit, values = col.name, col.unit, {}
        if variant == 1:
            name = _GERMAN.get(col.name, f"pat_{col.name}")
            if col.kind == "categorical" and col.name in _GERMAN:
                codes = (
                    _GERMAN_LABEL
                    if col is task.schema.target
                    else {c: f"{_GERMAN[col.name][:4]}_{i}" for i, c in enumerate(col.categories)}
                )
                values = {v: k for k, v in codes.items()}
                series = series.map(codes)
        elif variant == 2:
            name = col.name.replace("_in_month", "").replace("_in_years", "")
            if col.kind == "numeric" and col.unit in _OTHER_UNITS:
                col_unit = _OTHER_UNITS[col.unit]
                name = f"{name}_{col_unit.replace(' ', '_')}"
                series = series * scale_between(unit(col.unit), unit(col_unit))
            elif col.kind == "categorical" and col is not task.schema.target:
                codes = {c: f"{col.name[:3].upper()}{i}" for i, c in enumerate(col.categories)}
                values = {v: k for k, v in codes.items()}
                series = series.map(codes)
            else:
                name = name.upper()
        out[name] = series
        feature = FeatureCard(name, concept, col_unit if col.kind == "numeric" else None, values)
        if col is task.schema.target:
            label = feature
        else:
            features.append(feature)
    assert label is not None
    local = pd.DataFrame(out)
    label_values = local[label.column].astype(str).tolist()
    records, classes = noised_counts(label_values, COUNT_EPSILON, seed * 7919 + institution_index)
    card = Card(
        institution=institution,
        kind=KINDS.get(scheme, "institution"),
        jurisdiction="DE" if variant == 1 else "NL" if variant == 2 else "GB",
        dataset_id=f"{task.name}@{institution}",
        title=f"{institution}: {task.name} records",
        modality=task.modality,
        purposes=[task.purpose],
        features=features,
        label=label,
        records=records,
        class_counts=classes,
        count_epsilon=COUNT_EPSILON,
        source="simulated partition of the task's bundled data",
    )
    return local, card
