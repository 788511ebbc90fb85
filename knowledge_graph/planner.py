"""Who can train a task together, and how each one's columns line up.

One SPARQL query finds the data sets that fit a task (its modality, every required concept
and the label concept present, the task's purpose allowed); each fitting card is then
aligned to give that institution's feature mapping. A networkx view of institutions, data
sets and concepts gives compatibility clusters and the picture the dashboard draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx
from rdflib import URIRef

from fl_client.data.mapping import FeatureMapping
from fl_client.tasks import get_task
from knowledge_graph.alignment import align
from knowledge_graph.cards import card_from_graph, concept_curie
from knowledge_graph.concepts import modality_iri, task_iri
from knowledge_graph.store import KnowledgeGraph

if TYPE_CHECKING:
    from fl_server.federation import FederationPlan

# A card records which tasks' required concepts it covers when it is stored
# (fk:coversConceptsOf), so this query is a lookup on the store's indexes.
CANDIDATES = """
SELECT ?d ?inst ?name ?id WHERE {{
  <{task}> fk:modality ?m ; fk:purpose ?purpose ; fk:labelConcept ?label .
  ?d fk:coversConceptsOf <{task}> ; fk:modality ?m ; fk:allowedPurpose ?purpose ;
     dct:publisher ?inst ; dct:identifier ?id ; fk:label/fk:represents ?label .
  ?inst rdfs:label ?name .
}} ORDER BY ?name ?id
"""

MISSING = """
SELECT ?d ?name ?c WHERE {{
  <{task}> fk:requiresConcept ?c ; fk:modality ?m .
  ?d a dcat:Dataset ; fk:modality ?m ; dct:publisher/rdfs:label ?name .
  FILTER NOT EXISTS {{ ?d fk:feature/fk:represents ?c }}
}} ORDER BY ?d ?c
"""

ALL_DATASETS = """
SELECT ?d ?name ?m WHERE {
  ?d a dcat:Dataset ; dct:publisher/rdfs:label ?name ; fk:modality ?m .
} ORDER BY ?name ?d
"""


@dataclass
class Member:
    institution: str
    dataset_id: str
    dataset: str  # IRI
    mapping: FeatureMapping


@dataclass
class TaskPlan:
    task: str
    members: list[Member] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # institution -> why

    @property
    def institutions(self) -> list[str]:
        return [m.institution for m in self.members]


def plan_task(kg: KnowledgeGraph, task_name: str) -> TaskPlan:
    task = get_task(task_name)
    t = task_iri(task.name)
    plan = TaskPlan(task.name)
    fitting = list(kg.query(CANDIDATES.format(task=t)))
    for d, _inst, name, dataset_id in fitting:
        if str(name) in plan.institutions:
            continue  # one data set per institution and task: the first by id
        card = card_from_graph(kg.graph_of(str(d)), str(d))
        alignment = align(task, card)
        if alignment.ok:
            plan.members.append(Member(str(name), str(dataset_id), str(d), alignment.mapping))
        else:
            plan.excluded[str(name)] = "; ".join(alignment.reasons())
    fit = {str(r[0]) for r in fitting}
    missing: dict[str, list[str]] = {}
    for _d, name, c in kg.query(MISSING.format(task=t)):
        missing.setdefault(str(name), []).append(concept_curie(c))
    task_modality = modality_iri(task.modality)
    for d, name, m in kg.query(ALL_DATASETS):
        who = str(name)
        if str(d) in fit or who in plan.institutions or who in plan.excluded:
            continue
        if m != task_modality:
            if who not in missing:
                plan.excluded[who] = f"holds no {task.modality} data set"
            continue
        if who in missing:
            shown = ", ".join(missing[who][:3]) + (" ..." if len(missing[who]) > 3 else "")
            plan.excluded[who] = f"lacks concept(s) {shown}"
        else:
            plan.excluded[who] = (
                f"its card does not allow purpose {task.purpose!r} or lacks the label"
            )
    return plan


def federation_plan(plan: TaskPlan) -> FederationPlan:
    """What the coordinator sends: who may join, and each member's mapping."""
    from fl_server.federation import FederationPlan

    if not plan.members:
        reasons = "; ".join(f"{k}: {v}" for k, v in sorted(plan.excluded.items())) or "no cards"
        raise ValueError(f"no institution can join task {plan.task!r} ({reasons})")
    return FederationPlan(
        node_config={
            m.institution: {"mapping": m.mapping.to_json(), "dataset-id": m.dataset_id}
            for m in plan.members
        },
        allowed={m.institution for m in plan.members},
    )


def compatibility_graph(kg: KnowledgeGraph) -> nx.Graph:
    """Institutions – data sets – concepts (node attribute `kind`); tasks link to concepts."""
    g = nx.Graph()
    rows = kg.query(
        """SELECT ?inst ?name ?d ?id ?m ?c WHERE {
             ?d a dcat:Dataset ; dct:publisher ?inst ; dct:identifier ?id ; fk:modality ?m .
             ?inst rdfs:label ?name .
             { ?d fk:feature/fk:represents ?c } UNION { ?d fk:label/fk:represents ?c }
           }"""
    )
    for inst, name, d, dataset_id, m, c in rows:
        g.add_node(str(inst), kind="institution", label=str(name))
        g.add_node(
            str(d), kind="dataset", label=str(dataset_id), modality=str(m).rsplit("#", 1)[-1]
        )
        g.add_node(str(c), kind="concept", label=concept_curie(c))
        g.add_edge(str(inst), str(d))
        g.add_edge(str(d), str(c))
    return g


def compatibility_clusters(kg: KnowledgeGraph) -> list[set[str]]:
    """Groups of institutions that share at least one concept through their data sets."""
    g = compatibility_graph(kg)
    clusters = []
    for comp in nx.connected_components(g):
        insts = {g.nodes[n]["label"] for n in comp if g.nodes[n]["kind"] == "institution"}
        if insts:
            clusters.append(insts)
    return sorted(clusters, key=lambda s: sorted(s))


def institutions_with_modalities(
    kg: KnowledgeGraph, concept: URIRef | str, modalities: tuple[str, ...] = ("Tabular", "Image")
) -> list[str]:
    """Institutions holding a data set of every given modality that carries `concept`."""
    from knowledge_graph.cards import concept_ref

    c = concept if isinstance(concept, URIRef) else concept_ref(str(concept))
    clauses = "\n".join(
        f"?d{i} dct:publisher ?inst ; fk:modality fk:{m} . "
        f"{{ ?d{i} fk:feature/fk:represents <{c}> }} UNION {{ ?d{i} fk:label/fk:represents <{c}> }}"
        for i, m in enumerate(modalities)
    )
    rows = kg.query(
        f"SELECT DISTINCT ?name WHERE {{ {clauses} ?inst rdfs:label ?name }} ORDER BY ?name"
    )
    return [str(r[0]) for r in rows]


__all__ = [
    "Member",
    "TaskPlan",
    "compatibility_clusters",
    "compatibility_graph",
    "federation_plan",
    "institutions_with_modalities",
    "plan_task",
]
