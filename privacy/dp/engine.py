"""Make a task's model, optimizer and data loader private with Opacus's PrivacyEngine."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from opacus import PrivacyEngine
from opacus.validators import ModuleValidator
from torch import nn
from torch.utils.data import DataLoader

from privacy.dp.config import DPConfig
from privacy.dp.errors import DPError

# Opacus's hooks on a model whose inputs need no gradient: expected and harmless.
warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)


@dataclass
class PrivateTraining:
    """What the training loop uses instead of the plain model, optimizer, loss and loader."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    loader: DataLoader
    engine: PrivacyEngine
    noise_multiplier: float
    sample_rate: float


def sampling(num_records: int, batch_size: int) -> tuple[float, int]:
    """Poisson sample rate and steps per epoch, exactly as Opacus derives them from a loader."""
    steps = max(1, math.ceil(num_records / batch_size))
    return 1.0 / steps, steps


def dp_ready(model: nn.Module, name: str = "model") -> nn.Module:
    """The model itself when Opacus can train it, else its fixed twin (e.g. BatchNorm → GroupNorm).

    A fix that renames or reshapes parameters is refused: federated peers must share one
    architecture, so the task itself has to change.
    """
    errors = ModuleValidator.validate(model, strict=False)
    if not errors:
        return model
    fixed = ModuleValidator.fix(model)
    remaining = ModuleValidator.validate(fixed, strict=False)
    same = {k: v.shape for k, v in fixed.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    if remaining or not same:
        first = (remaining or errors)[0]
        raise DPError(
            f"{name} cannot be trained with DP-SGD: {first}; "
            "replace that layer in the task's model (e.g. BatchNorm with GroupNorm)"
        )
    return fixed


def make_private(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    criterion: nn.Module,
    config: DPConfig,
    noise_multiplier: float,
    noise_seed: int | None = None,
) -> PrivateTraining:
    """Wrap for DP-SGD: per-sample clipping to `max_grad_norm`, Gaussian noise, Poisson batches.

    `noise_seed` makes a round's noise reproducible by whoever holds the seed, which must be the
    institution alone (see `noise_seed`); None draws it from the OS.
    """
    generator = None
    if noise_seed is not None:
        device = next(model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(noise_seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant=config.accountant)
        out = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            criterion=criterion,
            noise_multiplier=noise_multiplier,
            max_grad_norm=config.max_grad_norm,
            poisson_sampling=True,
            noise_generator=generator,
            grad_sample_mode=config.grad_sample_mode,
        )
    if config.grad_sample_mode == "ghost":
        module, dp_optimizer, dp_criterion, dp_loader = out  # type: ignore[misc]
    else:
        module, dp_optimizer, dp_loader = out  # type: ignore[misc]
        dp_criterion = criterion
    return PrivateTraining(
        module=module,
        optimizer=dp_optimizer,
        criterion=dp_criterion,
        loader=dp_loader,
        engine=engine,
        noise_multiplier=noise_multiplier,
        sample_rate=1.0 / len(dp_loader),
    )


def noise_seed(state_dir: Path, *parts: object) -> int:
    """A round's noise seed derived from a secret only the institution holds.

    A seed the coordinator could guess would let it subtract the noise; this one is an HMAC
    under a key created once in the institution's state directory (owner-only).
    """
    key_file = state_dir / "dp-noise.key"
    if not key_file.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / f".dp-noise.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, os.urandom(32))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, key_file)  # atomic and never overwrites: the first writer wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = key_file.read_bytes()
    msg = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hmac.new(key, msg, hashlib.sha256).digest()[:8], "big") >> 1
