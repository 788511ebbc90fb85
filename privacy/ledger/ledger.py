"""The institution's durable privacy ledger (SQLite on its own machine).

Check-then-charge runs in one immediate write transaction, so two runs drawing on the same
data set's budget cannot both pass the check; SQLite's full synchronous mode makes a charge
durable before `charge` returns, before any update leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine, select

from privacy.dp.accounting import Step, epsilon_of
from privacy.dp.errors import BudgetExceeded, DPError
from privacy.ledger.models import Budget, Charge


@dataclass(frozen=True)
class Spend:
    dataset: str
    budget: Budget | None
    spent: float
    charges: int


class Ledger:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = _sqlite_engine(self.path)
        SQLModel.metadata.create_all(self.engine, tables=[Budget.__table__, Charge.__table__])  # type: ignore[list-item]

    def close(self) -> None:
        self.engine.dispose()

    # --- budgets -------------------------------------------------------------------------
    def set_budget(
        self, dataset: str, epsilon: float, delta: float = 1e-5, accountant: str = "prv"
    ) -> Budget:
        """Set or change a data set's budget; lowering it below what was spent stops new runs."""
        if not epsilon > 0:
            raise DPError(f"a budget must be > 0, got {epsilon}")
        if not 0 < delta < 1:
            raise DPError(f"budget delta must lie in (0, 1), got {delta}")
        with Session(self.engine) as s:
            budget = s.get(Budget, dataset) or Budget(dataset=dataset, epsilon=epsilon, delta=delta)
            budget.epsilon, budget.delta, budget.accountant = epsilon, delta, accountant
            s.add(budget)
            s.commit()
            s.refresh(budget)
            return budget

    def budget(self, dataset: str) -> Budget | None:
        with Session(self.engine) as s:
            return s.get(Budget, dataset)

    # --- charges -------------------------------------------------------------------------
    def charges(self, dataset: str | None = None, run_id: str | None = None) -> list[Charge]:
        with Session(self.engine) as s:
            q = select(Charge)
            if dataset is not None:
                q = q.where(Charge.dataset == dataset)
            if run_id is not None:
                q = q.where(Charge.run_id == run_id)
            return list(s.exec(q.order_by(Charge.created_at, Charge.id)))  # type: ignore[arg-type]

    def history(self, dataset: str, run_id: str | None = None) -> list[Step]:
        return [(c.noise_multiplier, c.sample_rate, c.steps) for c in self.charges(dataset, run_id)]

    def spent(self, dataset: str) -> float:
        """Epsilon every run together spent on the data set, at its budget's delta."""
        budget = self.budget(dataset)
        if budget is None:
            return 0.0
        return epsilon_of(self.history(dataset), budget.delta, budget.accountant)

    def summary(self) -> list[Spend]:
        with Session(self.engine) as s:
            names = set(s.exec(select(Budget.dataset))) | set(s.exec(select(Charge.dataset)))
        return [
            Spend(n, self.budget(n), self.spent(n), len(self.charges(n))) for n in sorted(names)
        ]

    def charge(
        self,
        dataset: str,
        run_id: str,
        rnd: int,
        step: Step,
        delta: float,
        accountant: str = "prv",
        default_budget: float | None = None,
    ) -> Charge:
        """Record one round's release, or refuse it if the data set's budget would be passed.

        Idempotent per (dataset, run, round): a retried round returns the existing charge, which
        is honest because the institution's noise for a round is fixed by its own secret seed.
        """
        with Session(self.engine) as s:
            s.connection()  # BEGIN IMMEDIATE: the check and the insert see the same ledger
            existing = s.exec(
                select(Charge).where(
                    Charge.dataset == dataset, Charge.run_id == run_id, Charge.round == rnd
                )
            ).first()
            if existing is not None:
                return existing
            budget = s.get(Budget, dataset)
            if budget is None:
                if default_budget is None:
                    raise BudgetExceeded(
                        f"data set {dataset!r} has no privacy budget; set one with "
                        f"`fl-client budget --dataset {dataset} --limit EPSILON`"
                    )
                budget = Budget(
                    dataset=dataset, epsilon=default_budget, delta=delta, accountant=accountant
                )
                s.add(budget)
            if delta > budget.delta:
                raise BudgetExceeded(
                    f"run delta {delta:g} is above the budget's delta {budget.delta:g} for "
                    f"{dataset!r}; ask the coordinator for --dp-delta {budget.delta:g}"
                )
            rows = s.exec(select(Charge).where(Charge.dataset == dataset)).all()
            before = [(c.noise_multiplier, c.sample_rate, c.steps) for c in rows]
            total = epsilon_of([*before, step], budget.delta, budget.accountant)
            if total > budget.epsilon * (1 + 1e-9):
                spent = epsilon_of(before, budget.delta, budget.accountant)
                raise BudgetExceeded(
                    f"round {rnd} of run {run_id} would bring {dataset!r} to epsilon "
                    f"{total:.3g}, past its budget {budget.epsilon:g} (spent {spent:.3g}); "
                    f"raise it with `fl-client budget --dataset {dataset} --limit EPSILON` "
                    "or leave this run"
                )
            run_steps = [
                (c.noise_multiplier, c.sample_rate, c.steps) for c in rows if c.run_id == run_id
            ]
            charge = Charge(
                dataset=dataset,
                run_id=run_id,
                round=rnd,
                noise_multiplier=step[0],
                sample_rate=step[1],
                steps=step[2],
                delta=delta,
                accountant=accountant,
                run_epsilon=epsilon_of([*run_steps, step], delta, accountant),
                dataset_epsilon=total,
            )
            s.add(charge)
            s.commit()
            s.refresh(charge)
            return charge


def _sqlite_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
