"""Who takes part in a run, decided by the knowledge graph when it is installed."""

from __future__ import annotations

from fl_server.deploy.config import CoordinatorConfig
from fl_server.federation import FederationPlan


def plan_run(config: CoordinatorConfig, task: str) -> tuple[FederationPlan | None, str]:
    """The planner's FederationPlan for `task`, and a line saying what was decided.

    The graph is the coordinator API's: the one on disk (`[api] kg-dir`) or the cards
    stored in the database. Without the knowledge graph package, no plan: every
    registered institution that connects may join.
    """
    try:
        from knowledge_graph.planner import federation_plan, plan_task
    except ImportError:
        return None, "knowledge graph not installed: every registered institution may join"
    from fl_server.api.knowledge import Knowledge
    from fl_server.api.settings import ApiSettings
    from fl_server.db import Database

    db = Database(config.database_url)
    try:
        settings = ApiSettings.from_env(database_url=config.database_url, kg_dir=config.api.kg_dir)
        with Knowledge(db, settings).graph() as kg:
            plan = federation_plan(plan_task(kg, task))
    finally:
        db.dispose()
    allowed = "every institution" if plan.allowed is None else ", ".join(sorted(plan.allowed))
    return plan, f"knowledge graph plan for {task}: {allowed}"
