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
from fl_client.tasks.base import Task
from knowledge_graph.alignment import align
from knowledge_graph.cards import Card, concept_curie, concept_ref
from knowledge_graph.concepts import column_concept, label_concept, modality_iri, task_iri
from knowledge_graph.errors import PlanError
from knowledge_graph.store import KnowledgeGraph

if TYPE_CHECKING:
    from fl_server.federation import FederationPlan

# The store derives, whenever a card or the vocabulary changes, which tasks each data set
# is eligible for: the task's modality and label concept, its purpose allowed, a column for
# every required concept (fk:eligibleFor; rules in knowledge_graph/store.py). This query
# reads that index, so its cost follows the number of members, not the size of the graph.
CANDIDATES = """
SELECT ?d ?name WHERE {{
  GRAPH ?d {{ ?d fk:eligibleFor <{task}> ; dct:publisher ?inst . ?inst rdfs:label ?name }}
}} ORDER BY ?name ?d
"""

ALL_DATASETS = """
SELECT DISTINCT ?d ?name ?m WHERE {
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
    """Who can join `task_name`, each with its feature mapping; everyone else with the reason."""
    task = get_task(task_name)
    t = task_iri(task.name)
    plan = TaskPlan(task.name)
    joined: set[str] = set()
    fitting = list(kg.query(CANDIDATES.format(task=t), limit=1 << 40))
    for d, name in fitting:
        who = str(name)
        if who in joined:
            continue  # one data set per institution and task: the first by IRI
        card = kg.card(str(d))
        alignment = align(task, card)
        if alignment.ok:
            plan.members.append(Member(who, card.dataset_id, str(d), alignment.mapping))
            plan.excluded.pop(who, None)
            joined.add(who)
        else:
            plan.excluded.setdefault(
                who, f"data set {card.dataset_id}: " + "; ".join(alignment.reasons())
            )
    fit = {str(r[0]) for r in fitting}
    others: dict[str, list[tuple[str, URIRef]]] = {}
    for d, name, m in kg.query(ALL_DATASETS, limit=1 << 40):
        if str(name) not in joined and str(d) not in fit:
            others.setdefault(str(name), []).append((str(d), m))
    task_modality = modality_iri(task.modality)
    for who, datasets in others.items():
        if who in plan.excluded:
            continue
        same = [d for d, m in datasets if m == task_modality]
        if not same:
            plan.excluded[who] = f"holds no {task.modality} data set"
            continue
        cards = [kg.card(d) for d in same]
        if len(cards) == 1:
            plan.excluded[who] = _why_not(task, cards[0])
        else:
            plan.excluded[who] = "; ".join(
                f"data set {c.dataset_id}: {_why_not(task, c)}" for c in cards
            )
    return plan


def _why_not(task: Task, card: Card) -> str:
    """Why a card of the task's modality does not fit: purpose, label, missing concepts."""
    wanted = [concept_curie(column_concept(task, c.name)) for c in task.schema.columns]
    have = {concept_curie(concept_ref(f.concept)) for f in card.features}
    missing = [c for c in wanted if c not in have]
    if len(missing) == len(wanted):
        return f"its {task.modality} data set {card.dataset_id} has none of the task's concepts"
    reasons = []
    if task.purpose not in card.purposes:
        reasons.append(f"its card does not allow purpose {task.purpose!r}")
    label = concept_curie(label_concept(task))
    if concept_curie(concept_ref(card.label.concept)) != label:
        reasons.append(f"its label is {card.label.concept or 'undefined'}, not {label}")
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        reasons.append(f"lacks concept(s) {', '.join(missing[:3])}{more}")
    return "; ".join(reasons) or "its card does not fit the task"


def federation_plan(plan: TaskPlan) -> FederationPlan:
    """What the coordinator sends: who may join, and each member's mapping."""
    from fl_server.federation import FederationPlan

    if not plan.members:
        reasons = "; ".join(f"{k}: {v}" for k, v in sorted(plan.excluded.items())) or "no cards"
        raise PlanError(f"no institution can join task {plan.task!r} ({reasons})")
    return FederationPlan(
        node_config={
            m.institution: {"mapping": m.mapping.to_json(), "dataset-id": m.dataset_id}
            for m in plan.members
        },
        allowed={m.institution for m in plan.members},
    )


def compatibility_graph(kg: KnowledgeGraph) -> nx.Graph:
    """Institutions – data sets – concepts (node attribute `kind`), the dashboard's picture."""
    g = nx.Graph()
    rows = kg.query(
        """SELECT ?inst ?name ?d ?id ?m ?c WHERE {
             ?d a dcat:Dataset ; dct:publisher ?inst ; dct:identifier ?id ; fk:modality ?m .
             ?inst rdfs:label ?name .
             { ?d fk:feature/fk:represents ?c } UNION { ?d fk:label/fk:represents ?c }
           }""",
        limit=1 << 40,
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
    c = concept if isinstance(concept, URIRef) else concept_ref(str(concept))
    clauses = "\n".join(
        f"?d{i} dct:publisher ?inst ; fk:modality fk:{m} . "
        f"{{ ?d{i} fk:feature/fk:represents <{c}> }} UNION {{ ?d{i} fk:label/fk:represents <{c}> }}"
        for i, m in enumerate(modalities)
    )
    rows = kg.query(
        f"SELECT DISTINCT ?name WHERE {{ {clauses} ?inst rdfs:label ?name }} ORDER BY ?name",
        limit=1 << 40,
    )
    return [str(r[0]) for r in rows]


__all__ = [
    "CANDIDATES",
    "Member",
    "TaskPlan",
    "compatibility_clusters",
    "compatibility_graph",
    "federation_plan",
    "institutions_with_modalities",
    "plan_task",
]
