"""DP-SGD against the attacks: leakage falls to chance, and the empirical ε respects the
accountant's (an empirical bound above the accountant's ε means broken DP or accounting)."""

from __future__ import annotations

from functools import cache

import pytest
from torch import nn

from fl_client.data import LocalData, prepare
from fl_client.tasks import get_task
from fl_client.tasks.models import MLP
from privacy.audit import AuditReport, ShadowTrainer, dp_trainer, run_audit, standard_trainer
from privacy.dp import DPConfig

TASK = get_task("credit-default")
DELTA = 1e-5
EPOCHS = 30


def _model() -> nn.Module:
    return MLP(TASK.schema.input_dim, TASK.schema.num_classes, (128,))


@cache
def _data() -> LocalData:
    df = TASK.reference_data().sample(500, random_state=1).reset_index(drop=True)
    return prepare(df, TASK.schema, 0.5, 0)


def _dp_trainer(epsilon: float, spent: list[float]) -> ShadowTrainer:
    """The institutions' own DP-SGD (privacy.dp), calibrated for all EPOCHS at DELTA."""
    return dp_trainer(
        TASK,
        DPConfig(target_epsilon=epsilon, delta=DELTA),
        epochs=EPOCHS,
        batch_size=32,
        learning_rate=0.05,
        model_factory=_model,
        spent=spent,
    )


def _audit(trainer: ShadowTrainer, shadows: int = 4) -> AuditReport:
    d = _data()
    target = trainer(d.x_train, d.y_train, 3)
    return run_audit(
        target,
        TASK,
        d.x_train,
        d.y_train,
        d.x_test,
        d.y_test,
        shadows=shadows,
        epochs=EPOCHS,
        seed=0,
        delta=DELTA,
        trainer=trainer,
        bootstrap=300,
    )


@cache
def _non_private() -> AuditReport:
    return _audit(standard_trainer(TASK, epochs=EPOCHS, model_factory=_model))


def test_the_same_recipe_without_dp_leaks() -> None:
    report = _non_private()
    assert report["loss"].auc > 0.6 and report["lira"].auc > 0.6
    assert max(a.epsilon_lower_bound for a in report.attacks.values()) > 0.5


@pytest.mark.parametrize("epsilon", [1.0, 8.0])
def test_dp_pulls_attacks_to_chance_within_the_accountants_epsilon(epsilon: float) -> None:
    spent: list[float] = []
    report = _audit(_dp_trainer(epsilon, spent))
    assert spent[0] <= epsilon * 1.01  # the accountant agrees with the calibration
    for attack in report.attacks.values():
        if epsilon <= 1.0:
            assert abs(attack.auc - 0.5) < 0.07, attack.attack
        assert attack.auc < _non_private()[attack.attack].auc
        # Never above the accountant: the bound is already the lower end of its interval.
        assert attack.epsilon_lower_bound <= spent[0], attack.attack
