"""Run records: the ServerApp's RunRecorder and the importer of finished simulations."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import test_db_backends as backends
from sqlalchemy import func, select

from fl_server.db import Database, RecordError
from fl_server.db import audit as audit_log
from fl_server.db.ingest import ingest_results
from fl_server.db.models import AuditEntry, RoundRow, Run, RunParticipant
from fl_server.db.recorder import RunRecorder
from fl_server.db.runs import ensure_run
from fl_server.federation import RoundRecord

CONFIG = {"scenario": "banks", "task": "credit-default", "rounds": 3, "dp": True}

database_url = backends.database_url  # the fixture, shared with test_db_backends
db = backends.db


def _record(rnd: int, accuracy: float = 0.7, rejected: dict[str, str] | None = None) -> RoundRecord:
    return RoundRecord(
        round=rnd,
        metrics={"accuracy": accuracy, "loss": 0.6 - rnd / 100},
        train_metrics={"train-loss": 0.5},
        clients=["bank-b", "bank-a"],
        rejected=rejected or {},
        bytes_up=1000 * rnd,
        bytes_down=2000 * rnd,
        seconds=1.5,
        epsilon={"bank-a": 1.0 * rnd, "bank-b": 1.1 * rnd},
        per_client={"bank-a": {"bytes_up": 500.0, "epsilon": 1.0 * rnd}},
        he={},
    )


def _url(db: Database) -> str:
    return db.url.render_as_string(hide_password=False)


def _counts(db: Database) -> tuple[int, int]:
    with db.read() as s:
        rounds = s.scalar(select(func.count()).select_from(RoundRow)) or 0
        entries = s.scalar(select(func.count()).select_from(AuditEntry)) or 0
    return rounds, entries


def test_a_run_is_recorded_round_by_round(db: Database) -> None:
    rec = RunRecorder(_url(db), "run-1", "credit-default", CONFIG)
    rec.start()
    for rnd in (1, 2, 3):
        rec.on_round(_record(rnd, accuracy=0.6 + rnd / 20))
        with db.read() as s:
            assert s.get(Run, "run-1").last_completed_round == rnd  # type: ignore[union-attr]
    rec.finish("finished", {"accuracy": 0.75})
    rec.close()
    with db.read() as s:
        run = s.get(Run, "run-1")
        rows = list(s.scalars(select(RoundRow).order_by(RoundRow.round)))
        people = set(s.scalars(select(RunParticipant.institution)))
    assert run is not None and run.status == "finished" and run.final == {"accuracy": 0.75}
    assert run.total_rounds == 3 and run.finished_at is not None
    assert [r.metrics["accuracy"] for r in rows] == [0.65, 0.7, 0.75]
    assert rows[1].clients == ["bank-a", "bank-b"] and rows[2].bytes_down == 6000
    assert rows[2].epsilon == {"bank-a": 3.0, "bank-b": pytest.approx(3.3)}
    assert people == {"bank-a", "bank-b"}
    with db.read() as s:
        assert audit_log.verify(s).ok


def test_a_replayed_round_is_not_duplicated_and_a_changed_one_replaces_it(db: Database) -> None:
    rec = RunRecorder(_url(db), "run-1", "credit-default", CONFIG)
    rec.start()
    rec.on_round(_record(1))
    rec.on_round(_record(2))
    before = _counts(db)
    rec.on_round(_record(2))  # what the ServerApp does after resuming from round 2
    assert _counts(db) == before
    rec.on_round(_record(2, rejected={"bank-c": "no reply within 60 s"}))
    rounds, entries = _counts(db)
    assert rounds == 2 and entries == before[1] + 1
    with db.read() as s:
        row = s.scalars(select(RoundRow).where(RoundRow.round == 2)).one()
        assert row.rejected == {"bank-c": "no reply within 60 s"}
        assert s.get(RunParticipant, ("run-1", "bank-c")) is not None
        assert s.get(Run, "run-1").last_completed_round == 2  # type: ignore[union-attr]
    rec.close()


def test_rounds_survive_a_crash_and_the_run_resumes(db: Database, tmp_path: Path) -> None:
    """The process dies inside round 3's transaction: rounds 1-2 stay, round 3 leaves no trace."""
    script = tmp_path / "crash.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            from fl_server.db.recorder import RunRecorder
            from fl_server.db.runs import record_round
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from test_db_recorder import CONFIG, _record
            rec = RunRecorder(sys.argv[1], "run-1", "credit-default", CONFIG)
            rec.start()
            rec.on_round(_record(1))
            rec.on_round(_record(2))
            with rec.db.write() as s:
                record_round(s, "run-1", _record(3), actor="coordinator")
                s.flush()
                os._exit(9)
            """
        )
    )
    done = subprocess.run([sys.executable, str(script), _url(db)], capture_output=True, timeout=120)
    assert done.returncode == 9, done.stderr.decode()[-2000:]
    with db.read() as s:
        run = s.get(Run, "run-1")
        assert run is not None and run.status == "running" and run.last_completed_round == 2
        assert [r.round for r in s.scalars(select(RoundRow).order_by(RoundRow.round))] == [1, 2]
        assert audit_log.verify(s).ok

    resumed = RunRecorder(_url(db), "run-1", "credit-default", CONFIG)
    resumed.start()
    resumed.on_round(_record(2))  # the checkpointed round, replayed on resume
    resumed.on_round(_record(3))
    resumed.finish("finished", None)
    resumed.close()
    with db.read() as s:
        assert [r.round for r in s.scalars(select(RoundRow).order_by(RoundRow.round))] == [1, 2, 3]
        assert s.get(Run, "run-1").status == "finished"  # type: ignore[union-attr]
        assert audit_log.verify(s).ok


def test_a_run_created_through_the_api_is_taken_over_by_the_recorder(db: Database) -> None:
    with db.write() as s:
        ensure_run(s, "planned", "credit-default", {"note": "x"}, actor="admin:k", status="created")
    rec = RunRecorder(_url(db), "planned", "credit-default", {"rounds": 5})
    rec.start()
    rec.close()
    with db.read() as s:
        run = s.get(Run, "planned")
    assert run is not None and run.status == "running" and run.started_at is not None
    assert run.config == {"note": "x", "rounds": 5} and run.total_rounds == 5
    assert run.created_by == "admin:k"


def test_recording_without_start_still_creates_the_run(db: Database) -> None:
    rec = RunRecorder(_url(db), "r", "digits", {})
    rec.on_round(_record(1))
    rec.close()
    with db.read() as s:
        assert s.get(Run, "r").last_completed_round == 1  # type: ignore[union-attr]


def test_bad_calls_are_refused_and_change_nothing(db: Database) -> None:
    rec = RunRecorder(_url(db), "r", "digits", {})
    rec.start()
    before = _counts(db)
    with pytest.raises(RecordError, match="ends as one of"):
        rec.finish("done")
    with pytest.raises(RecordError, match="positive integer"):
        rec.on_round({"round": 0})  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="exists for task"):
        RunRecorder(_url(db), "r", "credit-default", {}).start()
    with pytest.raises(RecordError, match="run id"):
        RunRecorder(_url(db), "bad id!", "digits", {}).start()
    assert _counts(db) == before
    with db.read() as s:
        assert s.get(Run, "r").status == "running"  # type: ignore[union-attr]
    rec.close()


def test_non_finite_metrics_are_stored_as_null(db: Database) -> None:
    rec = RunRecorder(_url(db), "r", "digits", {})
    record = _record(1)
    record.metrics["loss"] = math.nan
    record.epsilon["bank-a"] = math.inf
    rec.on_round(record)
    rec.close()
    with db.read() as s:
        row = s.scalars(select(RoundRow)).one()
    assert row.metrics["loss"] is None and row.epsilon["bank-a"] is None


# --- importing fl-sim results -----------------------------------------------------------


def _metrics_json(run_id: str = "abc123", rounds: int = 2) -> dict[str, object]:
    """The shape `fl-sim run` writes (see simulations/runner.py)."""
    return {
        "config": {
            "scenario": "banks",
            "task": "credit-default",
            "clients": 2,
            "rounds": rounds,
            "run_id": run_id,
        },
        "institutions": [
            {"name": "bank-a", "dataset": "credit-default@bank-a", "records": 120},
            {"name": "bank-b", "dataset": "credit-default@bank-b", "records": 300},
        ],
        "rounds": [
            {
                "round": r,
                "metrics": {"accuracy": 0.6 + r / 10, "loss": 0.7},
                "train_metrics": {"train-loss": 0.5},
                "clients": ["bank-a", "bank-b"],
                "rejected": {},
                "bytes_up": 100,
                "bytes_down": 200,
                "seconds": 2.0,
                "epsilon": {"bank-a": r * 1.5},
                "per_client": {},
                "he": {},
            }
            for r in range(1, rounds + 1)
        ],
        "final": {"accuracy": 0.8, "auc": 0.85},
        "centralized": {"accuracy": 0.82},
        "seconds": 12.5,
    }


def test_a_results_directory_is_imported_once(db: Database, tmp_path: Path) -> None:
    for name, run_id in (("banks", "run-b"), ("hospitals", "run-h")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(_metrics_json(run_id)))
    first = ingest_results(db, tmp_path)
    assert sorted(r.run_id for r in first) == ["run-b", "run-h"] and all(r.changed for r in first)
    before = _counts(db)
    again = ingest_results(db, tmp_path)
    assert not any(r.changed for r in again) and _counts(db) == before
    with db.read() as s:
        run = s.get(Run, "run-b")
        part = s.get(RunParticipant, ("run-b", "bank-b"))
    assert run is not None and run.status == "finished" and run.last_completed_round == 2
    assert run.final == {
        "accuracy": 0.8,
        "auc": 0.85,
        "centralized_accuracy": 0.82,
        "seconds": 12.5,
    }
    assert part is not None and part.records == 300 and part.dataset == "credit-default@bank-b"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read it as JSON"),
        (json.dumps({"config": {"task": "x"}}), "no 'rounds' list"),
        (json.dumps({"rounds": []}), "names no task"),
    ],
)
def test_a_malformed_metrics_file_is_refused(
    db: Database, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(content)
    with pytest.raises(RecordError, match=message):
        ingest_results(db, tmp_path)


def test_a_bad_round_in_the_file_leaves_nothing_stored(db: Database, tmp_path: Path) -> None:
    data = _metrics_json()
    data["rounds"].append({"round": "three"})  # type: ignore[attr-defined]
    (tmp_path / "metrics.json").write_text(json.dumps(data))
    with pytest.raises(RecordError, match="positive integer"):
        ingest_results(db, tmp_path)
    assert _counts(db) == (0, 0)
    with db.read() as s:
        assert s.get(Run, "abc123") is None


def test_a_directory_without_results_names_the_fix(db: Database, tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="make demo"):
        ingest_results(db, tmp_path)
    with pytest.raises(RecordError, match="does not exist"):
        ingest_results(db, tmp_path / "nope")
