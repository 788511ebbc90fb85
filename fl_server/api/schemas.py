"""Request and response bodies (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fl_server.db.institutions import NAME_PATTERN
from fl_server.db.runs import RUN_ID_PATTERN

DATASET_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
InstitutionName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
RunId = Annotated[str, Field(pattern=RUN_ID_PATTERN, max_length=64)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- institutions ---------------------------------------------------------------------


class InstitutionCreate(Input):
    name: InstitutionName = Field(description="what the institution's SuperNode reports")
    display_name: Text = Field("", max_length=200)
    contact: Text = Field("", max_length=200)


class InstitutionOut(BaseModel):
    name: str
    display_name: str
    contact: str
    active: bool
    created_at: datetime


class InstitutionCreated(BaseModel):
    institution: InstitutionOut
    api_key: str = Field(description="shown once; the coordinator keeps only its hash")


class KeyIssued(BaseModel):
    api_key: str = Field(description="shown once; earlier keys are revoked")


class WhoAmI(BaseModel):
    role: str
    institution: str | None


# --- data sets --------------------------------------------------------------------------


class CardSubmission(Input):
    card: Text = Field(
        min_length=1, max_length=500_000, description="the data set card, YAML or JSON-LD text"
    )


class DatasetOut(BaseModel):
    institution: str
    dataset_id: str
    iri: str
    title: str
    modality: str
    card_sha256: str
    created_at: datetime
    updated_at: datetime
    withdrawn_at: datetime | None


class DatasetDetail(DatasetOut):
    card: str


# --- tasks ------------------------------------------------------------------------------


class ColumnOut(BaseModel):
    name: str
    kind: str
    categories: list[str]
    unit: str | None
    description: str


class TaskOut(BaseModel):
    name: str
    modality: str
    description: str
    purpose: str
    columns: list[ColumnOut]
    target: ColumnOut


# --- runs -------------------------------------------------------------------------------


class RunCreate(Input):
    id: RunId | None = Field(None, description="default: a random 12-character id")
    task: Text = Field(max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)
    participants: list[InstitutionName] = Field(default_factory=list, max_length=1000)


class ParticipantOut(BaseModel):
    institution: str
    dataset: str
    records: int | None


class RunStatusOut(BaseModel):
    id: str
    status: str
    last_completed_round: int
    total_rounds: int | None
    updated_at: datetime


class RunSummary(RunStatusOut):
    task: str
    scenario: str | None
    created_at: datetime
    finished_at: datetime | None
    latest_metrics: dict[str, float | None]


class RunDetail(RunSummary):
    config: dict[str, Any]
    final: dict[str, Any] | None
    created_by: str
    started_at: datetime | None
    participants: list[ParticipantOut]


class RoundOut(BaseModel):
    round: int
    metrics: dict[str, float | None]
    train_metrics: dict[str, float | None]
    clients: list[str]
    rejected: dict[str, str]
    bytes_up: int
    bytes_down: int
    seconds: float
    epsilon: dict[str, float | None]
    per_client: dict[str, dict[str, float | None]]
    he: dict[str, float | None]
    recorded_at: datetime


class Rejection(BaseModel):
    round: int
    institution: str
    reason: str


class RunSeries(BaseModel):
    """Everything the run page plots, one list entry per stored round."""

    run_id: str
    rounds: list[int]
    metrics: dict[str, list[float | None]]
    train_metrics: dict[str, list[float | None]]
    epsilon: dict[str, list[float | None]]
    participants: list[int]
    rejected: list[int]
    rejections: list[Rejection]
    bytes_up: list[int]
    bytes_down: list[int]
    seconds: list[float]


# --- privacy ----------------------------------------------------------------------------


class ChargeIn(Input):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    run_id: RunId
    round: int = Field(ge=1, le=1_000_000)
    dataset: Text = Field(min_length=1, max_length=200)
    epsilon: float = Field(ge=0, le=1e6)
    delta: float = Field(ge=0, lt=1)
    steps: int = Field(ge=0, le=2_000_000_000)
    noise_multiplier: float = Field(ge=0, le=1e6)
    sample_rate: float = Field(gt=0, le=1)
    spent_at: datetime | None = Field(None, description="when it was spent; default: now")


class ChargeOut(BaseModel):
    id: int
    institution: str
    run_id: str
    round: int
    dataset: str
    epsilon: float
    delta: float
    steps: int
    noise_multiplier: float
    sample_rate: float
    spent_at: datetime
    recorded_at: datetime


# --- audit ------------------------------------------------------------------------------


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    institution: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_after: int | None = Field(description="pass as `after` for the next page")


class AuditVerification(BaseModel):
    ok: bool
    entries: int
    head_hash: str
    problems: list[str]


# --- knowledge graph --------------------------------------------------------------------


class SparqlQuery(Input):
    query: Text = Field(min_length=1, max_length=100_000)


class SparqlResult(BaseModel):
    """SELECT: `head`+`results` (SPARQL 1.1 JSON results); ASK: `boolean`;
    CONSTRUCT: `turtle`. `truncated` says the result cap cut it short."""

    form: str
    head: dict[str, Any] | None = None
    results: dict[str, Any] | None = None
    boolean: bool | None = None
    turtle: str | None = None
    truncated: bool = False


class GraphNode(BaseModel):
    id: str
    kind: str
    label: str
    x: float
    y: float


class GraphEdge(BaseModel):
    source: str
    target: str
    kind: str


class GraphOut(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    rows: int = Field(description="nodes in the fullest column (to size a drawing)")


class Health(BaseModel):
    status: str
    database: str
    knowledge_graph: str
