"""credit-default: will a loan applicant default? (German Credit, UCI, CC BY 4.0)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

from fl_client.data.schema import Column, Schema
from fl_client.tasks.base import Task
from fl_client.tasks.models import MLP

_NUMERIC = {
    "duration_in_month": ("month", "Duration of the credit"),
    "credit_amount": ("Deutsche Mark", "Amount of the credit"),
    "installment_rate_in_percentage_of_disposable_income": ("percent", "Instalment rate"),
    "present_residence_since": ("year", "Years at the present residence"),
    "age_in_years": ("year", "Age of the applicant"),
    "number_of_existing_credits_at_this_bank": ("count", "Existing credits at this bank"),
    "number_of_people_being_liable_to_provide_maintenance_for": ("count", "Dependants"),
}

_CATEGORIES: dict[str, tuple[str, ...]] = {
    "status_of_existing_checking_account": (
        "... < 0 DM",
        "0 <= ... < 200 DM",
        "... >= 200 DM / salary assignments for at least 1 year",
        "no checking account",
    ),
    "credit_history": (
        "no credits taken/ all credits paid back duly",
        "all credits at this bank paid back duly",
        "existing credits paid back duly till now",
        "delay in paying off in the past",
        "critical account/ other credits existing (not at this bank)",
    ),
    "purpose": (
        "car (new)",
        "car (used)",
        "furniture/equipment",
        "radio/television",
        "domestic appliances",
        "repairs",
        "education",
        "retraining",
        "business",
        "others",
    ),
    "savings_account_and_bonds": (
        "... < 100 DM",
        "100 <= ... < 500 DM",
        "500 <= ... < 1000 DM",
        "... >= 1000 DM",
        "unknown/ no savings account",
    ),
    "present_employment_since": (
        "unemployed",
        "... < 1 year",
        "1 <= ... < 4 years",
        "4 <= ... < 7 years",
        "... >= 7 years",
    ),
    "personal_status_and_sex": (
        "male : divorced/separated",
        "female : divorced/separated/married",
        "male : single",
        "male : married/widowed",
    ),
    "other_debtors_or_guarantors": ("none", "co-applicant", "guarantor"),
    "property": (
        "real estate",
        "building society savings agreement/ life insurance",
        "car or other, not in attribute Savings account/bonds",
        "unknown / no property",
    ),
    "other_installment_plans": ("bank", "stores", "none"),
    "housing": ("rent", "own", "for free"),
    "job": (
        "unemployed/ unskilled - non-resident",
        "unskilled - resident",
        "skilled employee / official",
        "management/ self-employed/ highly qualified employee/ officer",
    ),
    "telephone": ("none", "yes, registered under the customers name"),
    "foreign_worker": ("yes", "no"),
}

# Column order as in the published data set.
_ORDER = (
    "status_of_existing_checking_account",
    "duration_in_month",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings_account_and_bonds",
    "present_employment_since",
    "installment_rate_in_percentage_of_disposable_income",
    "personal_status_and_sex",
    "other_debtors_or_guarantors",
    "present_residence_since",
    "property",
    "age_in_years",
    "other_installment_plans",
    "housing",
    "number_of_existing_credits_at_this_bank",
    "job",
    "number_of_people_being_liable_to_provide_maintenance_for",
    "telephone",
    "foreign_worker",
)


def _column(name: str) -> Column:
    if name in _NUMERIC:
        unit, text = _NUMERIC[name]
        return Column(name, "numeric", unit=unit, description=text)
    return Column(name, "categorical", categories=_CATEGORIES[name])


SCHEMA = Schema(
    columns=tuple(_column(n) for n in _ORDER),
    target=Column(
        "creditability",
        "categorical",
        categories=("good", "bad"),
        description="bad = the applicant defaulted (positive class)",
    ),
)


@cache
def _reference() -> pd.DataFrame:
    with resources.files("simulations.data").joinpath("german_credit.csv").open("rb") as fh:
        return pd.read_csv(fh)


def reference_data() -> pd.DataFrame:
    return _reference().copy()


TASK = Task(
    name="credit-default",
    description="Tabular binary classification: loan default (German Credit, 1,000 applicants)",
    schema=SCHEMA,
    model_factory=lambda s: MLP(s.input_dim, s.num_classes, hidden=(32, 16)),
    reference_loader=reference_data,
    purpose="credit-risk",
    learning_rate=0.05,
    batch_size=32,
    local_epochs=3,
)
