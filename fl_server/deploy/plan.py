"""A FederationPlan in the run config: one JSON string, as Flower's run config takes.

Every institution receives the run config, so the plan says nothing an institution may not
know: who takes part and each one's column mapping.
"""

from __future__ import annotations

import json
from typing import Any

from fl_server.deploy.errors import ConfigError
from fl_server.federation import FederationPlan

_SCALARS = (str, int, float, bool)


def plan_to_json(plan: FederationPlan) -> str:
    doc: dict[str, Any] = {
        "allowed": sorted(plan.allowed) if plan.allowed is not None else None,
        "node_config": {k: dict(v) for k, v in sorted(plan.node_config.items())},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def plan_from_json(text: str) -> FederationPlan:
    """The plan a run config carries; "" is no plan (every registered institution joins)."""
    if not text.strip():
        return FederationPlan()
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"run config 'plan' is not JSON ({exc}); resubmit the run") from None
    if not isinstance(doc, dict):
        raise ConfigError("run config 'plan' must be a JSON object")
    allowed = doc.get("allowed")
    node_config = doc.get("node_config") or {}
    if allowed is not None and not (
        isinstance(allowed, list) and all(isinstance(a, str) for a in allowed)
    ):
        raise ConfigError("run config 'plan': 'allowed' must be a list of institution names")
    if not isinstance(node_config, dict) or not all(
        isinstance(v, dict) and all(isinstance(x, _SCALARS) for x in v.values())
        for v in node_config.values()
    ):
        raise ConfigError("run config 'plan': 'node_config' must map institutions to flat settings")
    return FederationPlan(
        node_config={str(k): dict(v) for k, v in node_config.items()},
        allowed=set(allowed) if allowed is not None else None,
    )
