"""`fl-client init | card | register | start | export-model`: an institution joins a federation.

Mount into `fl-client` with `register(app)`. Everything lives in the node's home directory
(default ~/.fedkg/node): node.toml, the authentication key pair, the ledger, the HE context.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home", help="the node's directory (default: $FEDKG_NODE_HOME or ~/.fedkg/node)"
    ),
]


def default_home() -> Path:
    return Path(os.environ.get("FEDKG_NODE_HOME", Path.home() / ".fedkg" / "node"))


def _guard(fn: Callable[[], T]) -> T:
    """User errors as one line on stderr, exit code 2, no traceback."""
    try:
        return fn()
    except (ValueError, RuntimeError, OSError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


def init_command(
    institution: Annotated[
        str, typer.Option(help="your institution's name, as the coordinator registered it")
    ],
    superlink: Annotated[str, typer.Option(help="the coordinator's SuperLink, host:port")],
    ca_cert: Annotated[Path, typer.Option(help="the coordinator's CA certificate (ca.crt)")],
    he_context: Annotated[
        Path | None,
        typer.Option(help="the federation's secret HE context from the key ceremony"),
    ] = None,
    api_url: Annotated[str, typer.Option(help="the coordinator API, e.g. https://coord:8080")] = "",
    dp_budget: Annotated[
        float, typer.Option(help="epsilon a data set may spend over all runs")
    ] = 10.0,
    home: HomeOption = None,
    force: Annotated[bool, typer.Option(help="replace the node's key pair")] = False,
) -> None:
    """Set up this node: local config, authentication key pair, ledger, copies of ca.crt and
    the HE context (owner-only). Send the printed public key to the coordinator."""
    from fl_server.deploy.certs import generate_node_keys, write_private
    from fl_server.deploy.node import KEY_NAME, NodeConfig
    from privacy.ledger import Ledger

    home = (home or default_home()).expanduser().resolve()

    def work() -> tuple[NodeConfig, str]:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = generate_node_keys(home / "keys", KEY_NAME, force=force)
        ca = home / "ca.crt"
        shutil.copyfile(ca_cert.expanduser(), ca)
        secret = None
        if he_context is not None:
            from privacy.he.keys import SECRET_FILE, load_secret_context

            secret = home / SECRET_FILE
            write_private(secret, he_context.expanduser().read_bytes())
            load_secret_context(secret)  # refuses a public context or a foreign file
        node = NodeConfig(
            home=home,
            institution=institution,
            superlink=superlink,
            root_certificates=ca,
            private_key=keys.private,
            he_context=secret,
            dp_budget=dp_budget,
            api_url=api_url,
        )
        Ledger(node.ledger_path).close()
        node.save()
        return node, keys.fingerprint

    node, fingerprint = _guard(work)
    console.print(f"node home: {home}")
    console.print(f"public key (send it to the coordinator): {node.public_key}")
    console.print(f"its SHA-256 fingerprint (read it to them out of band): {fingerprint}")
    console.print("next: fl-client card YOUR_DATA.csv --task TASK")


# --- cards ---------------------------------------------------------------------------------
def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def suggest_concepts(columns: list[str], task_name: str) -> dict[str, tuple[str, float]]:
    """Local column -> (task column, similarity in [0, 1]) for the likeliest matches."""
    from fl_client.tasks import get_task

    task = get_task(task_name)
    wanted = [*task.schema.columns, task.schema.target]
    scores: list[tuple[float, str, str]] = []
    for local in columns:
        for col in wanted:
            name = difflib.SequenceMatcher(None, _norm(local), _norm(col.name)).ratio()
            desc = difflib.SequenceMatcher(None, _norm(local), _norm(col.description)).ratio()
            scores.append((max(name, 0.8 * desc), local, col.name))
    chosen: dict[str, tuple[str, float]] = {}
    taken: set[str] = set()
    for score, local, target in sorted(scores, reverse=True):
        if score < 0.5 or local in chosen or target in taken:
            continue
        chosen[local] = (target, round(score, 2))
        taken.add(target)
    return chosen


def draft_card(
    csv: Path,
    task_name: str,
    institution: str,
    dataset_id: str,
    kind: str,
    count_epsilon: float,
) -> tuple[str, list[str]]:
    """A card (YAML) for the CSV, and what the institution should check before publishing."""
    import pandas as pd

    from fl_client.tasks import get_task
    from knowledge_graph.cards import Card, FeatureCard, noised_counts, validate_card
    from knowledge_graph.concepts import scheme_of

    task = get_task(task_name)
    df = pd.read_csv(csv)
    matches = suggest_concepts(list(df.columns), task.name)
    by_name = {c.name: c for c in (*task.schema.columns, task.schema.target)}
    scheme = scheme_of(task)
    notes: list[str] = []
    features: list[FeatureCard] = []
    label: FeatureCard | None = None
    for local in df.columns:
        if local not in matches:
            notes.append(f"column {local!r}: no concept suggested; add it by hand or leave it out")
            continue
        target, score = matches[local]
        col = by_name[target]
        values: dict[str, str] = {}
        if col.kind == "categorical":
            seen = sorted(str(v) for v in df[local].dropna().unique())
            unknown = [v for v in seen if v not in col.categories]
            values = {v: v for v in seen if v in col.categories}
            if unknown:
                notes.append(
                    f"column {local!r}: values {unknown[:5]} are not {target}'s categories "
                    f"{list(col.categories)[:5]}...; map them under `values`"
                )
        elif not pd.api.types.is_numeric_dtype(df[local]):
            notes.append(f"column {local!r} should be numeric for {target}")
        if score < 0.95:
            notes.append(f"column {local!r} -> {target} (similarity {score}): confirm")
        feature = FeatureCard(local, f"{scheme}:{target}", col.unit, values)
        if col is task.schema.target:
            label = feature
        else:
            features.append(feature)
    if label is None:
        raise ValueError(
            f"no column of {csv} looks like the label {task.schema.target.name!r}; "
            "rename it or write the card by hand"
        )
    records, class_counts = noised_counts([str(v) for v in df[label.column]], count_epsilon)
    card = Card(
        institution=institution,
        kind=kind,
        dataset_id=dataset_id,
        title=f"{institution}: {csv.stem}",
        modality=task.modality,
        purposes=[task.purpose] if task.purpose else [],
        features=features,
        label=label,
        records=records,
        class_counts=class_counts,
        count_epsilon=count_epsilon,
    )
    notes += validate_card(card)
    return card.to_yaml(), notes


def card_command(
    csv: Annotated[Path, typer.Argument(help="your data set (CSV)")],
    task: Annotated[str, typer.Option(help="the task the data set is for, e.g. credit-default")],
    dataset_id: Annotated[str, typer.Option(help="a stable id for the data set")] = "",
    kind: Annotated[str, typer.Option(help="bank, hospital, ...")] = "bank",
    count_epsilon: Annotated[
        float, typer.Option(help="epsilon of the noised counts in the card")
    ] = 1.0,
    home: HomeOption = None,
) -> None:
    """Draft the data set's card from the CSV: columns, types, suggested concepts. Review
    card.yaml before `fl-client register`; the node trains on this CSV from now on."""
    from fl_server.deploy.node import load_node_config

    node = _guard(lambda: load_node_config(home or default_home()))
    ds = dataset_id or re.sub(r"[^A-Za-z0-9._-]+", "-", csv.stem).strip("-") or "dataset"
    text, notes = _guard(
        lambda: draft_card(csv.expanduser(), task, node.institution, ds, kind, count_epsilon)
    )
    out = node.home / "card.yaml"
    out.write_text(text)
    node.data_path, node.dataset_id, node.task = csv.expanduser().resolve(), ds, task
    node.save()
    console.print(f"card drafted: {out}")
    for note in notes:
        console.print(f"  [yellow]check:[/] {escape(note)}")
    console.print("next: review the card, then fl-client register --api-key KEY")


def register_command(
    api_key: Annotated[
        str, typer.Option(envvar="FEDKG_API_KEY", help="your institution's API key")
    ],
    home: HomeOption = None,
    api_url: Annotated[
        str, typer.Option(help="the coordinator API (default: from node.toml)")
    ] = "",
) -> None:
    """Publish the card to the coordinator (its API) and show the node key to register."""
    import httpx

    from fl_server.deploy.node import load_node_config

    node = _guard(lambda: load_node_config(home or default_home()))
    url = (api_url or node.api_url).rstrip("/")
    if not url:
        err.print(
            "[red]error:[/] no coordinator API URL; pass --api-url or set api-url in node.toml"
        )
        raise typer.Exit(2)
    card = node.home / "card.yaml"
    if not card.exists():
        err.print("[red]error:[/] no card.yaml yet; run `fl-client card DATA.csv --task TASK`")
        raise typer.Exit(2)
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {"card": card.read_text()}

    def send() -> httpx.Response:
        res = httpx.post(f"{url}/api/datasets", json=body, headers=headers, timeout=30)
        if res.status_code == 409:
            res = httpx.put(
                f"{url}/api/datasets/{node.institution}/{node.dataset_id}",
                json=body,
                headers=headers,
                timeout=30,
            )
        return res

    res = _guard(send)
    if res.status_code >= 400:
        try:
            message = res.json().get("message", res.text)
        except ValueError:
            message = res.text
        err.print(
            f"[red]error:[/] the coordinator refused the card ({res.status_code}): {escape(str(message))}"
        )
        raise typer.Exit(1)
    from fl_server.deploy.certs import public_key_fingerprint

    fingerprint = public_key_fingerprint(node.public_key.read_bytes())
    console.print(f"[green]card {node.dataset_id} published[/] for {node.institution}")
    console.print(
        "The coordinator registers your node's public key with:\n"
        f"  fl-server register-node {node.institution} {node.public_key.name}\n"
        f"fingerprint to compare out of band: {fingerprint}"
    )


def start_command(
    home: HomeOption = None,
    flower_defaults: Annotated[
        bool,
        typer.Option(help="Flower's SuperNode as shipped (3 s polling, a process per message)"),
    ] = False,
) -> None:
    """Run the SuperNode (TLS, the node's key, its data) until Ctrl+C; trains on cuda if present."""
    from fl_server.deploy.environment import process_env
    from fl_server.deploy.node import load_node_config

    node = _guard(lambda: load_node_config(home or default_home()))
    argv = _guard(lambda: node.argv(flower_defaults=flower_defaults))
    console.print(f"SuperNode of [cyan]{node.institution}[/] -> {node.superlink} (TLS, node key)")
    proc = subprocess.Popen(argv, env=process_env(node.home / "flwr-home"), start_new_session=True)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait()
    if code == 305:
        err.print(
            "[red]error:[/] the SuperLink does not know this node's key; ask the coordinator "
            f"to run `fl-server register-node {node.institution} node-key.pub`"
        )
    raise typer.Exit(code)


def export_model_command(
    checkpoint: Annotated[
        Path, typer.Argument(help="the run's checkpoint directory or a round-NNNNN.ckpt file")
    ],
    out: Annotated[Path, typer.Option(help="where to write the model (torch state dict)")],
    task: Annotated[str, typer.Option(help="the run's task (default: node.toml's)")] = "",
    home: HomeOption = None,
) -> None:
    """Decrypt the final global model with the federation's secret context and save it."""
    from fl_server.deploy.export import export_model
    from fl_server.deploy.node import load_node_config

    node = _guard(lambda: load_node_config(home or default_home()))
    name = task or node.task
    if not name:
        err.print("[red]error:[/] which task? pass --task")
        raise typer.Exit(2)
    path = _guard(lambda: export_model(checkpoint, name, node.he_context, out))
    console.print(f"model written to {path} (owner-only); load it with torch.load")


def register(app: typer.Typer) -> None:
    """Add the deployment commands to a Typer app (fl-client)."""
    app.command("init")(init_command)
    app.command("card")(card_command)
    app.command("register")(register_command)
    app.command("start")(start_command)
    app.command("export-model")(export_model_command)


node_app = typer.Typer(
    help="Join a deployed federation.", no_args_is_help=True, pretty_exceptions_enable=False
)
register(node_app)

if __name__ == "__main__":
    node_app()
