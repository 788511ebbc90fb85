"""Import finished simulations (`metrics.json` written by fl-sim) so the dashboard shows them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fl_server.db.engine import Database
from fl_server.db.errors import ConflictError, RecordError
from fl_server.db.institutions import register_institution
from fl_server.db.models import Institution, Run
from fl_server.db.runs import add_participants, ensure_run, finish_run, record_round

ACTOR = "ingest"


@dataclass(frozen=True)
class IngestedRun:
    run_id: str
    source: Path
    rounds: int
    changed: bool
    cards: int = 0  # data set cards published (new or changed)


def find_metrics(path: Path) -> list[Path]:
    """`path` itself, `path/metrics.json`, or every `path/*/metrics.json`."""
    if path.is_file():
        return [path]
    if (path / "metrics.json").is_file():
        return [path / "metrics.json"]
    found = sorted(path.glob("*/metrics.json"))
    if not path.exists():
        raise RecordError(f"{path} does not exist; give a results directory (e.g. results/)")
    if not found:
        raise RecordError(
            f"no metrics.json in {path} or its sub-directories; run `fl-sim run` or `make demo` first"
        )
    return found


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("rounds"), list):
        raise RecordError(
            f"{path}: not a fedkg metrics.json (no 'rounds' list); was it written by fl-sim?"
        )
    if not isinstance(data.get("config"), dict) or not data["config"].get("task"):
        raise RecordError(f"{path}: its 'config' names no task; was it written by fl-sim?")
    return data


def _run_id(path: Path, config: dict[str, Any]) -> str:
    given = config.get("run_id")
    if isinstance(given, str) and given:
        return given
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    return f"{config.get('scenario', 'run')}-{digest}"


def _final(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, prefix in (("final", ""), ("centralized", "centralized_")):
        values = data.get(key)
        if isinstance(values, dict):
            out.update({f"{prefix}{k}": v for k, v in values.items()})
    if isinstance(data.get("seconds"), int | float):
        out["seconds"] = data["seconds"]
    return out


def ingest_file(db: Database, path: Path) -> IngestedRun:
    """One run, in one transaction: a malformed file leaves the database as it was."""
    data = _load(path)
    config = data["config"]
    run_id = _run_id(path, config)
    participants = {
        str(i["name"]): i
        for i in data.get("institutions") or []
        if isinstance(i, dict) and i.get("name")
    }
    with db.write() as session:
        run = session.get(Run, run_id)
        if run is None:
            run = ensure_run(session, run_id, str(config["task"]), config, actor=ACTOR)
        elif run.task != config["task"]:
            raise ConflictError(
                f"{path}: run {run_id} is already stored for task {run.task!r}; it is not this run"
            )
        add_participants(session, run_id, participants, participants)
        changed = False
        for record in data["rounds"]:
            if not isinstance(record, dict):
                raise RecordError(f"{path}: a round entry is not an object")
            try:
                changed |= record_round(session, run_id, record, actor=ACTOR)
            except RecordError as exc:
                raise RecordError(f"{path}: {exc}") from None
        if changed or run.status != "finished":
            finish_run(session, run_id, "finished", _final(data), actor=ACTOR)
            changed = True
    cards = ingest_cards(db, path.parent / "data")
    return IngestedRun(run_id, path, len(data["rounds"]), changed, cards)


def ingest_cards(db: Database, directory: Path) -> int:
    """Publish the cards a simulation wrote (`data/*.card.yaml`), registering the simulated
    institutions (without keys). Cards already stored unchanged are skipped."""
    from fl_server.db.cards import CardInvalid, find_dataset, parse_card, store_card

    published = 0
    for card_path in sorted(directory.glob("*.card.yaml")):
        try:
            card = parse_card(card_path.read_text())
        except (CardInvalid, OSError, UnicodeDecodeError) as exc:
            raise RecordError(f"{card_path}: {exc}") from None
        with db.write() as session:
            inst = session.scalars(
                select(Institution).where(Institution.name == card.institution)
            ).first()
            if inst is None:
                inst = register_institution(session, card.institution, actor=ACTOR)
            row = find_dataset(session, inst, card.dataset_id)
            if row is not None and row.withdrawn_at is None and row.card_sha256 == card.sha256:
                continue
            store_card(session, inst, card, str(card.card.iri), actor=ACTOR)
            published += 1
    return published


def ingest_results(db: Database, path: Path) -> list[IngestedRun]:
    return [ingest_file(db, p) for p in find_metrics(path)]
