"""Records the simulated run in the knowledge graph as it happens (PROV-O)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fl_client.run_config import TrainConfig
from fl_server.federation import RoundRecord
from knowledge_graph.provenance import record_model, record_round, record_run
from knowledge_graph.store import KnowledgeGraph


class ProvenanceListener:
    """Run at start, then each finished round with its contributors, ε and model version."""

    def __init__(self, graph: KnowledgeGraph, train: TrainConfig, federation: Any) -> None:
        self.graph = graph
        self.run_id = train.run_id
        self.datasets = {
            n.institution: str(_iri(n.institution, n.dataset_id)) for n in federation.nodes
        }
        record_run(graph, train.run_id, train.task, asdict(train))

    def on_round(self, record: RoundRecord) -> None:
        record_round(
            self.graph,
            self.run_id,
            record.round,
            record.clients,
            record.epsilon,
            record.metrics,
            {k: v for k, v in self.datasets.items() if k in record.clients},
        )
        record_model(self.graph, self.run_id, f"round-{record.round}", record.round)


def _iri(institution: str, dataset_id: str) -> Any:
    from knowledge_graph.vocab import dataset_iri

    return dataset_iri(institution, dataset_id)
