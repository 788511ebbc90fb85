"""DP-SGD on real training steps: clipping, noise, calibration and Opacus's own accounting."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from fl_client.data import prepare
from fl_client.node import NodeSettings
from fl_client.private_round import train_round
from fl_client.run_config import TrainConfig
from fl_client.tasks import get_task
from fl_client.training import make_loader, make_optimizer, train_epochs
from privacy.dp import (
    DPConfig,
    DPError,
    calibrate_noise,
    dp_ready,
    epsilon_of,
    make_private,
    sampling,
)
from privacy.ledger import Ledger


@pytest.fixture(scope="module")
def credit():
    task = get_task("credit-default")
    df = task.reference_data().iloc[:300].reset_index(drop=True)
    return task, prepare(df, task.schema, 0.2, 0)


def _cfg(rounds: int = 3, run: str = "run-a") -> TrainConfig:
    return TrainConfig(run, "credit-default", rounds, 1, 32, 0.05, 7)


def _node(tmp_path, name: str = "bank-0", budget: float = 10.0) -> NodeSettings:
    return NodeSettings(name, tmp_path / "x.csv", "loans", tmp_path / name, dp_budget=budget)


def test_ledger_epsilon_equals_opacus_accountant_over_real_steps(credit, tmp_path) -> None:
    task, data = credit
    cfg = DPConfig(noise_multiplier=1.1, delta=1e-5)
    q, per_epoch = sampling(data.num_train, 32)
    torch.manual_seed(0)
    model = task.build_model()
    private = make_private(
        model,
        make_optimizer(model, 0.05),
        make_loader(data.x_train, data.y_train, 32, 0),
        task.loss(),
        cfg,
        1.1,
        noise_seed=1,
    )
    assert private.sample_rate == pytest.approx(q)
    train_epochs(
        private.module, private.loader, private.optimizer, private.criterion, 2, torch.device("cpu")
    )
    opacus_eps = private.engine.accountant.get_epsilon(delta=1e-5)
    # Opacus's accountant counted the steps it really took; our ledger charges the planned ones.
    assert sum(n for _, _, n in private.engine.accountant.history) == 2 * per_epoch
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.set_budget("loans", 50.0)
    charge = ledger.charge("loans", "r", 1, (1.1, q, 2 * per_epoch), 1e-5)
    assert charge.run_epsilon == pytest.approx(opacus_eps, rel=1e-9)
    assert ledger.spent("loans") == pytest.approx(opacus_eps, rel=1e-9)


def test_per_sample_gradients_are_clipped_to_c_on_a_real_step(credit) -> None:
    task, data = credit
    clip = 0.05
    torch.manual_seed(3)
    model = task.build_model()
    reference = copy.deepcopy(model)
    private = make_private(
        model,
        make_optimizer(model, 0.05),
        make_loader(data.x_train, data.y_train, 32, 0),
        task.loss(),
        DPConfig(noise_multiplier=0.0, max_grad_norm=clip),
        0.0,
        noise_seed=0,
    )
    xb, yb = next(b for b in private.loader if len(b[1]) > 3)
    private.optimizer.zero_grad()
    private.criterion(private.module(xb), yb).backward()
    private.optimizer.clip_and_accumulate()

    # Recompute each example's gradient alone, clip it to C ourselves, and sum.
    expected = [torch.zeros_like(p) for p in reference.parameters()]
    norms = []
    for i in range(len(yb)):
        reference.zero_grad()
        nn.CrossEntropyLoss(reduction="sum")(reference(xb[i : i + 1]), yb[i : i + 1]).backward()
        grads = [p.grad.detach().clone() for p in reference.parameters()]
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        norms.append(float(norm))
        factor = min(1.0, clip / (float(norm) + 1e-6))
        for e, g in zip(expected, grads, strict=True):
            e += g * factor
    assert max(norms) > clip  # the step really had gradients to clip
    for p, e in zip(private.optimizer.params, expected, strict=True):
        assert torch.allclose(p.summed_grad, e, atol=1e-5)
    total = torch.sqrt(sum((p.summed_grad**2).sum() for p in private.optimizer.params))
    assert float(total) <= clip * len(yb) + 1e-5


def _one_private_epoch(task, data, sigma: float, noise_seed: int) -> list[torch.Tensor]:
    torch.manual_seed(11)  # same init and same Poisson batches every time
    model = task.build_model()
    private = make_private(
        model,
        make_optimizer(model, 0.05),
        make_loader(data.x_train, data.y_train, 32, 0),
        task.loss(),
        DPConfig(noise_multiplier=sigma),
        sigma,
        noise_seed=noise_seed,
    )
    train_epochs(
        private.module, private.loader, private.optimizer, private.criterion, 1, torch.device("cpu")
    )
    return [p.detach().clone() for p in model.parameters()]


def test_noise_is_really_added(credit) -> None:
    task, data = credit
    a = _one_private_epoch(task, data, 1.0, noise_seed=1)
    b = _one_private_epoch(task, data, 1.0, noise_seed=2)
    a_again = _one_private_epoch(task, data, 1.0, noise_seed=1)
    quiet1 = _one_private_epoch(task, data, 0.0, noise_seed=1)
    quiet2 = _one_private_epoch(task, data, 0.0, noise_seed=2)
    assert any(not torch.allclose(x, y) for x, y in zip(a, b, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(a, a_again, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(quiet1, quiet2, strict=True))


def test_noise_is_calibrated_for_the_whole_run(credit, tmp_path) -> None:
    task, data = credit
    node = _node(tmp_path)
    cfg = _cfg(rounds=3)
    dp = DPConfig(target_epsilon=2.0)
    spent = []
    for rnd in (1, 2, 3):
        torch.manual_seed(rnd)
        out = train_round(
            node, cfg, dp, rnd, task, data, task.build_model(), torch.device("cpu"), rnd
        )
        spent.append(out.metrics["epsilon"])
    assert spent == sorted(spent) and spent[0] < spent[-1]
    assert 1.8 <= spent[-1] <= 2.0  # the whole run lands just under the target, not one round
    q, per_epoch = sampling(data.num_train, cfg.batch_size)
    sigma = calibrate_noise(2.0, 1e-5, q, 3 * per_epoch, "prv")
    assert spent[-1] == pytest.approx(epsilon_of([(sigma, q, 3 * per_epoch)], 1e-5))


def test_bad_settings_are_one_line_errors_and_nothing_is_charged(credit, tmp_path) -> None:
    task, data = credit
    for kwargs, words in (
        ({"target_epsilon": 0.0}, "must be > 0"),
        ({"target_epsilon": -1.0}, "must be > 0"),
        ({"delta": 1.5}, "delta"),
        ({"max_grad_norm": 0.0}, "max grad norm"),
        ({"accountant": "moments"}, "accountant"),
        ({"target_epsilon": 3.0, "noise_multiplier": 1.0}, "not both"),
    ):
        with pytest.raises(DPError, match=words) as err:
            DPConfig(**kwargs)
        assert "\n" not in str(err.value)
    node = _node(tmp_path)
    too_big_delta = DPConfig(target_epsilon=3.0, delta=0.01)  # n = 240, 1/n ~ 0.004
    with pytest.raises(DPError, match=r"below 1/n .*--dp-delta 0\.0001"):
        train_round(
            node, _cfg(), too_big_delta, 1, task, data, task.build_model(), torch.device("cpu"), 0
        )
    assert (
        not (tmp_path / "bank-0" / "ledger.db").exists() or not Ledger(node.ledger_path).charges()
    )


class _WithBatchNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_a_model_opacus_cannot_train_is_refused_by_name() -> None:
    with pytest.raises(DPError, match=r"cannot be trained with DP-SGD: .*BatchNorm"):
        dp_ready(_WithBatchNorm(), "the toy model")
    for name in ("credit-default", "breast-cancer", "digits"):
        model = get_task(name).build_model()
        assert dp_ready(model) is model  # every bundled task trains privately as it is


def test_dp_on_an_image_task_trains(tmp_path) -> None:
    task = get_task("digits")
    df = task.reference_data().iloc[:400].reset_index(drop=True)
    data = prepare(df, task.schema, 0.2, 0)
    cfg = TrainConfig("img", "digits", 2, 1, 32, 0.05, 1)
    node = _node(tmp_path, "hospital-0")
    out = train_round(
        node,
        cfg,
        DPConfig(target_epsilon=8.0, delta=1e-4),
        1,
        task,
        data,
        task.build_model(),
        torch.device("cpu"),
        0,
    )
    assert np.isfinite(out.stats.loss) and out.metrics["epsilon"] > 0
