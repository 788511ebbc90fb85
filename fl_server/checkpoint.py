"""Durable global state after every round, so a crashed coordinator resumes without loss.

One file per round: a JSON header line, then the arrays' raw bytes. Written to a temporary
file, fsynced, renamed over the final name, and the directory fsynced: a reader sees the
previous checkpoint or the new one, never half of one. Works the same for plaintext weights
and for the encrypted aggregate (ciphertext chunks are arrays of bytes).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flwr.app import Array, ArrayRecord

_NAME = re.compile(r"^round-(\d{5})\.ckpt$")


class CheckpointError(RuntimeError):
    pass


@dataclass
class Checkpoint:
    run_id: str
    round: int
    arrays: ArrayRecord
    state: dict[str, Any]


class CheckpointStore:
    def __init__(self, directory: Path, keep: int = 3) -> None:
        self.directory = Path(directory)
        self.keep = keep

    def _run_dir(self, run_id: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", run_id):
            raise CheckpointError(f"run id {run_id!r} is not a safe directory name")
        return self.directory / run_id

    def save(self, run_id: str, rnd: int, arrays: ArrayRecord, state: dict[str, Any]) -> Path:
        run_dir = self._run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        items = list(arrays.items())
        header = {
            "run_id": run_id,
            "round": rnd,
            "state": state,
            "arrays": [
                {
                    "name": k,
                    "dtype": a.dtype,
                    "shape": list(a.shape),
                    "stype": a.stype,
                    "size": len(a.data),
                }
                for k, a in items
            ],
        }
        final = run_dir / f"round-{rnd:05d}.ckpt"
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(json.dumps(header).encode() + b"\n")
            for _, a in items:
                fh.write(a.data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(run_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        for old in self._rounds(run_id)[: -self.keep]:
            (run_dir / f"round-{old:05d}.ckpt").unlink(missing_ok=True)
        return final

    def _rounds(self, run_id: str) -> list[int]:
        run_dir = self._run_dir(run_id)
        if not run_dir.is_dir():
            return []
        return sorted(int(m.group(1)) for p in run_dir.iterdir() if (m := _NAME.match(p.name)))

    def latest(self, run_id: str) -> Checkpoint | None:
        rounds = self._rounds(run_id)
        return self.load(run_id, rounds[-1]) if rounds else None

    def load(self, run_id: str, rnd: int) -> Checkpoint:
        path = self._run_dir(run_id) / f"round-{rnd:05d}.ckpt"
        try:
            with open(path, "rb") as fh:
                header = json.loads(fh.readline())
                arrays = ArrayRecord()
                for spec in header["arrays"]:
                    data = fh.read(spec["size"])
                    if len(data) != spec["size"]:
                        raise CheckpointError(f"{path} is truncated")
                    arrays[spec["name"]] = Array(
                        dtype=spec["dtype"],
                        shape=tuple(spec["shape"]),
                        stype=spec["stype"],
                        data=data,
                    )
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(
                f"{path} cannot be read ({exc}); restore it from backup"
            ) from None
        return Checkpoint(header["run_id"], int(header["round"]), arrays, header["state"])
