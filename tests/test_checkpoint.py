from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord

from fl_server.checkpoint import CheckpointError, CheckpointStore


def _arrays(value: float) -> ArrayRecord:
    return ArrayRecord(
        {"w": Array(np.full((3, 2), value, np.float32)), "ct": Array(np.arange(10, dtype=np.uint8))}
    )


def test_round_trip_and_latest(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=2)
    for rnd in (1, 2, 3):
        store.save("run1", rnd, _arrays(rnd), {"round-note": rnd})
    ckpt = store.latest("run1")
    assert ckpt is not None and ckpt.round == 3 and ckpt.state == {"round-note": 3}
    assert np.array_equal(ckpt.arrays["w"].numpy(), np.full((3, 2), 3, np.float32))
    assert np.array_equal(ckpt.arrays["ct"].numpy(), np.arange(10, dtype=np.uint8))
    assert sorted(p.name for p in (tmp_path / "run1").iterdir()) == [
        "round-00002.ckpt",
        "round-00003.ckpt",
    ]
    assert store.latest("other") is None


def test_truncated_checkpoint_is_detected(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    path = store.save("r", 1, _arrays(1.0), {})
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(CheckpointError, match="truncated"):
        store.latest("r")


def test_unsafe_run_id_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="safe directory name"):
        CheckpointStore(tmp_path).save("../evil", 1, _arrays(0.0), {})
