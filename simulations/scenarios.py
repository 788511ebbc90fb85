"""Named federations: who the simulated institutions are and what they train by default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    default_task: str
    institution_prefix: str
    tasks: tuple[str, ...]
    description: str

    def institution(self, index: int) -> str:
        return f"{self.institution_prefix}-{index}"


SCENARIOS: dict[str, Scenario] = {
    "banks": Scenario(
        "banks",
        "credit-default",
        "bank",
        ("credit-default",),
        "Banks predicting loan default without pooling customer records",
    ),
    "hospitals": Scenario(
        "hospitals",
        "breast-cancer",
        "hospital",
        ("breast-cancer", "digits"),
        "Hospitals diagnosing tumours (tabular) or reading images, records never leaving",
    ),
}


class ScenarioError(ValueError):
    pass


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ScenarioError(
            f"unknown scenario {name!r}; choose one of: {', '.join(sorted(SCENARIOS))}"
        ) from None
