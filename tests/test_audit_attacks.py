"""Membership attacks against real models: they find what overfitting leaks, nothing more."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch

from fl_client.data import LocalData, prepare
from fl_client.tasks import get_task
from fl_client.tasks.models import MLP
from privacy.audit import AuditError, run_audit, standard_trainer
from privacy.audit.attacks import example_losses, logits, scaled_confidence
from privacy.audit.lira import ShadowTrainer, balanced_inclusion

TASK = get_task("credit-default")


@cache
def _data() -> tuple[LocalData, LocalData]:
    """150 members / 150 non-members, and a disjoint 300-record pool for offline shadows."""
    df = TASK.reference_data().sample(frac=1.0, random_state=0).reset_index(drop=True)
    return (
        prepare(df.iloc[:300], TASK.schema, 0.5, 0),
        prepare(df.iloc[300:600], TASK.schema, 0.5, 0),
    )


def _wide_trainer(epochs: int = 60) -> ShadowTrainer:
    """A wide MLP trained long on few records: the textbook overfitted model."""
    return standard_trainer(
        TASK,
        epochs=epochs,
        model_factory=lambda: MLP(TASK.schema.input_dim, TASK.schema.num_classes, (256, 256)),
    )


@cache
def _overfitted() -> torch.nn.Module:
    d, _ = _data()
    return _wide_trainer()(d.x_train, d.y_train, 11)


def test_confidence_and_loss_agree_with_their_definitions() -> None:
    z = np.array([[2.0, -1.0, 0.5], [0.0, 40.0, -3.0], [-50.0, 0.0, 50.0]])
    y = np.array([0, 1, 2])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    py = p[np.arange(3), y]
    assert example_losses(z, y) == pytest.approx(-np.log(py))
    conf = scaled_confidence(z, y)
    assert conf[0] == pytest.approx(np.log(py[0] / (1 - py[0])))
    # Near-certain predictions stay finite where p/(1 − p) would overflow to inf.
    assert np.isfinite(conf).all() and conf[2] == pytest.approx(50.0, abs=1e-6)


def test_every_record_is_in_exactly_half_the_shadows() -> None:
    masks = balanced_inclusion(101, 8, seed=3)
    assert masks.shape == (8, 101)
    assert (masks.sum(axis=0) == 4).all()
    assert 30 < masks[0].sum() < 70  # and each shadow sees about half the pool


def test_attacks_detect_an_overfitted_model() -> None:
    d, _ = _data()
    model = _overfitted()
    report = run_audit(
        model,
        TASK,
        d.x_train,
        d.y_train,
        d.x_test,
        d.y_test,
        shadows=4,
        epochs=60,
        seed=0,
        trainer=_wide_trainer(),
        bootstrap=300,
    )
    loss, lira = report["loss"], report["lira"]
    assert report.target["member_accuracy"] == 1.0  # it memorised the training split
    assert loss.auc > 0.6 and loss.auc_ci[0] > 0.5
    assert lira.auc > 0.65 and lira.auc > loss.auc  # shadows calibrate per record
    assert lira.tpr_at_1pct_fpr > 0.01
    assert loss.epsilon_lower_bound > 0.5 and lira.epsilon_lower_bound > 0.5
    assert loss.n_members == 150 and lira.n_nonmembers == 150
    assert report.lira_mode == "online" and report.shadows == 4


def test_offline_lira_uses_a_disjoint_shadow_pool() -> None:
    d, pool = _data()
    report = run_audit(
        _overfitted(),
        TASK,
        d.x_train,
        d.y_train,
        d.x_test,
        d.y_test,
        shadow_data=(np.concatenate([pool.x_train, pool.x_test]), np.r_[pool.y_train, pool.y_test]),
        shadows=2,
        epochs=60,
        seed=0,
        trainer=_wide_trainer(),
        attacks=("lira",),
        bootstrap=200,
    )
    assert report.lira_mode == "offline" and set(report.attacks) == {"lira"}
    assert report["lira"].auc > 0.6


def test_a_model_that_saw_neither_group_leaks_nothing_about_them() -> None:
    d, pool = _data()
    stranger = _wide_trainer()(pool.x_train, pool.y_train, 5)  # never saw d's records
    report = run_audit(
        stranger,
        TASK,
        d.x_train,
        d.y_train,
        d.x_test,
        d.y_test,
        epochs=60,
        seed=0,
        attacks=("loss",),
        bootstrap=200,
    )
    assert abs(report["loss"].auc - 0.5) < 0.07
    assert report["loss"].epsilon_lower_bound == 0.0


def test_bad_inputs_are_refused_with_the_fix() -> None:
    d, _ = _data()
    model = _overfitted()
    args = (model, TASK, d.x_train, d.y_train, d.x_test, d.y_test)
    with pytest.raises(AuditError, match="unknown attack"):
        run_audit(*args, epochs=1, attacks=("gradient",))
    with pytest.raises(AuditError, match="at least 4 shadow"):
        run_audit(*args, epochs=1, shadows=2, attacks=("lira",))
    with pytest.raises(AuditError, match="at least 8"):
        run_audit(model, TASK, d.x_train[:5], d.y_train[:5], d.x_test, d.y_test, epochs=1)
    with pytest.raises(AuditError, match="differ in length"):
        run_audit(model, TASK, d.x_train, d.y_train[:-1], d.x_test, d.y_test, epochs=1)
    with pytest.raises(AuditError, match="cannot read these features"):
        run_audit(model, TASK, d.x_train[:, :10], d.y_train, d.x_test[:, :10], d.y_test, epochs=1)
    three = MLP(TASK.schema.input_dim, 3, (8,))
    with pytest.raises(AuditError, match="predicts 3 classes"):
        run_audit(three, TASK, d.x_train, d.y_train, d.x_test, d.y_test, epochs=1)
    with pytest.raises(AuditError, match="labels must lie"):
        run_audit(model, TASK, d.x_train, d.y_train + 2, d.x_test, d.y_test, epochs=1)


def test_logits_leave_the_model_in_its_mode() -> None:
    model = _overfitted().train()
    logits(model, _data()[0].x_test[:4])
    assert model.training
