"""RunRecorder: the ServerApp's listener that writes a run's rounds as they finish.

Each round is one transaction (the round row, the run's last completed round, the audit
entry), so after a crash the database holds exactly the rounds that were finished; the
ServerApp replays its last checkpointed round on resume, which is a no-op here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

from fl_server.db.engine import Database
from fl_server.db.errors import DatabaseError
from fl_server.db.models import Run
from fl_server.db.runs import add_participants, ensure_run, finish_run, record_round

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from fl_server.federation import RoundRecord

log = logging.getLogger("fedkg.db.recorder")
ACTOR = "coordinator"
T = TypeVar("T")


class RunRecorder:
    """Durable records of one run; pass it to the ServerApp as a round listener."""

    def __init__(
        self,
        database_url: str,
        run_id: str,
        task: str,
        config: Mapping[str, Any],
        *,
        participants: Mapping[str, Mapping[str, Any]] | None = None,
        retries: int = 3,
    ) -> None:
        self.run_id = run_id
        self.task = task
        self.config = dict(config)
        self.participants = dict(participants or {})
        self.retries = retries
        self.db = Database(database_url)

    def _transaction(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one write transaction, retrying while the database is unreachable."""
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                with self.db.write() as session:
                    return work(session)
            except (OperationalError, IntegrityError) as exc:
                if attempt == self.retries:
                    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                    raise DatabaseError(
                        f"run {self.run_id}: cannot write to {self.db.display_url}: {reason}; "
                        "the round is checkpointed, resume the run once the database is back"
                    ) from None
                log.warning("database write failed (%s); retrying in %.1f s", exc, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def start(self) -> None:
        """Mark the run running (creating it if the API did not), keeping rounds already done."""

        def work(session: Session) -> None:
            ensure_run(session, self.run_id, self.task, self.config, actor=ACTOR)
            if self.participants:
                add_participants(session, self.run_id, self.participants, self.participants)

        self._transaction(work)

    def on_round(self, record: RoundRecord) -> None:
        def work(session: Session) -> None:
            if session.get(Run, self.run_id) is None:  # start() was skipped
                ensure_run(session, self.run_id, self.task, self.config, actor=ACTOR)
            record_round(session, self.run_id, record, actor=ACTOR)

        self._transaction(work)

    def finish(self, status: str, final: dict[str, Any] | None = None) -> None:
        """`status`: "finished", "failed" or "cancelled"; `final`: the final metrics."""
        self._transaction(
            lambda session: finish_run(session, self.run_id, status, final, actor=ACTOR)
        )

    def close(self) -> None:
        self.db.dispose()
