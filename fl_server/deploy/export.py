"""The final global model out of a coordinator checkpoint, decrypted where the key is.

With HE on, a checkpoint holds the summed ciphertexts: only a holder of the federation's
secret context (an institution) can turn it into weights. Without HE it holds the weights.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fl_server.checkpoint import Checkpoint, CheckpointError, CheckpointStore
from fl_server.deploy.errors import DeployError

_ROUND = re.compile(r"^round-(\d{5})\.ckpt$")


def read_checkpoint(path: Path) -> Checkpoint:
    """A `round-NNNNN.ckpt` file, or a run's checkpoint directory (its last round)."""
    path = Path(path).expanduser()
    try:
        if path.is_dir():
            found = CheckpointStore(path.parent).latest(path.name)
            if found is None:
                raise DeployError(f"{path} holds no round-NNNNN.ckpt checkpoint")
            return found
        m = _ROUND.match(path.name)
        if m is None:
            raise DeployError(f"{path} is not a checkpoint (round-NNNNN.ckpt)")
        return CheckpointStore(path.parent.parent).load(path.parent.name, int(m.group(1)))
    except CheckpointError as exc:
        raise DeployError(str(exc)) from None


def decrypt_state(
    checkpoint: Checkpoint, task_name: str, secret_context: Path | None
) -> dict[str, np.ndarray]:
    """The model's weights, layer by layer, as the task's model names them."""
    import torch
    from flwr.app import RecordDict

    from fl_client.tasks import get_task
    from fl_server.strategy import he_records as wire

    model = get_task(task_name).build_model()
    template = {k: v.numpy() for k, v in model.state_dict().items()}
    arrays = checkpoint.arrays
    if not wire.is_encrypted(arrays):
        state = {k: a.numpy() for k, a in arrays.items()}
    else:
        if secret_context is None:
            raise DeployError(
                "this checkpoint is encrypted; pass the federation's secret HE context "
                "(--he-context, from the key ceremony)"
            )
        from privacy.he.keys import load_secret_context

        meta = wire.read_meta(arrays)
        spec = wire.RoundSpec(meta.fingerprint, meta.server_round, meta.cohort, meta.values)
        instruction = RecordDict({"arrays": arrays, "he": spec.to_record()})
        state = wire.unpack_global(load_secret_context(secret_context), instruction, template)
    if set(state) != set(template) or any(
        tuple(state[k].shape) != tuple(template[k].shape) for k in template
    ):
        raise DeployError(
            f"the checkpoint's layers do not fit task {task_name!r}; pass the run's --task"
        )
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def export_model(
    checkpoint_path: Path, task_name: str, secret_context: Path | None, out: Path
) -> Path:
    """Decrypt and write a torch state dict (`torch.load(out)`), owner-only."""
    import io

    import torch

    from fl_server.deploy.certs import write_private

    state = decrypt_state(read_checkpoint(checkpoint_path), task_name, secret_context)
    buffer = io.BytesIO()
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, buffer)
    write_private(Path(out).expanduser(), buffer.getvalue())
    return Path(out)
