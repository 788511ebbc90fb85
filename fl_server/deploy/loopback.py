"""A whole deployed federation on one machine: coordinator and institutions on loopback.

Real processes, real TLS, real node authentication, each institution with its own keys,
data, ledger and state directory; only the network is the loopback interface. Used by the
end-to-end tests and the latency benchmark, and handy to try a deployment before spreading
it over machines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from fl_server.deploy.certs import create_dev_certificates, generate_node_keys
from fl_server.deploy.config import DEFAULT_TEXT, CoordinatorConfig, load_config
from fl_server.deploy.coordinator import Coordinator
from fl_server.deploy.environment import process_env
from fl_server.deploy.errors import DeployError
from fl_server.deploy.node import KEY_NAME, NodeConfig
from fl_server.deploy.processes import ManagedProcess, free_port


@dataclass
class LoopbackFederation:
    root: Path
    institutions: tuple[str, ...] = ("bank-a", "bank-b", "bank-c")
    task: str = "credit-default"
    he: bool = True
    api: bool = False
    flower_defaults: bool = False  # Flower's SuperNode as shipped: the latency baseline
    dp_budget: float = 100.0
    coordinator: Coordinator = field(init=False)
    nodes: dict[str, NodeConfig] = field(default_factory=dict, init=False)
    node_ids: dict[str, int] = field(default_factory=dict, init=False)
    processes: dict[str, ManagedProcess] = field(default_factory=dict, init=False)
    he_public: Path | None = field(default=None, init=False)
    he_secret: Path | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.coordinator = Coordinator(self._configure())

    @property
    def config(self) -> CoordinatorConfig:
        return self.coordinator.config

    def _configure(self) -> CoordinatorConfig:
        coord = self.root / "coordinator"
        coord.mkdir(parents=True, exist_ok=True)
        text = DEFAULT_TEXT.replace("port = 9093", f"port = {free_port()}")
        text = text.replace("port = 8080", f"port = {free_port()}")
        text = text.replace("enabled = true", f"enabled = {'true' if self.api else 'false'}")
        if self.he:
            from privacy.he.keys import generate_keys

            keys = generate_keys(self.root / "key-ceremony", force=True)
            self.he_public, self.he_secret = keys.public, keys.secret
            text = text.replace('he-public-context = ""', f'he-public-context = "{keys.public}"')
        path = coord / "fedkg-coordinator.toml"
        path.write_text(text)
        config = load_config(path)
        create_dev_certificates(config.superlink.ca_certfile.parent, force=True)
        return config

    def _institution(self, index: int, name: str) -> NodeConfig:
        from fl_client.tasks import get_task

        home = self.root / "institutions" / name
        keys = generate_node_keys(home / "keys", KEY_NAME, force=True)
        data = home / "data" / f"{self.task}.csv"
        data.parent.mkdir(parents=True, exist_ok=True)
        df = get_task(self.task).reference_data()
        df.iloc[index :: len(self.institutions)].to_csv(data, index=False)
        node = NodeConfig(
            home=home,
            institution=name,
            superlink=self.config.superlink.connect_address,
            root_certificates=self.config.superlink.ca_certfile,
            private_key=keys.private,
            data_path=data,
            dataset_id=f"{name}-{self.task}",
            he_context=self.he_secret,
            dp_budget=self.dp_budget,
            runtime_port=free_port(),
            task=self.task,
        )
        node.save()
        return node

    def start(self, timeout: float = 90.0) -> None:
        """Coordinator first, then every institution registered and connected."""
        self.coordinator.start_superlink()
        self.coordinator.start_api()
        for i, name in enumerate(self.institutions):
            node = self._institution(i, name)
            self.node_ids[name] = self.coordinator.register_node(name, node.public_key)
            self.nodes[name] = node
            self.start_node(name)
        self.wait_online(set(self.institutions), timeout)

    def start_node(self, name: str) -> ManagedProcess:
        node = self.nodes[name]
        proc = ManagedProcess(
            f"SuperNode {name}",
            node.argv(flower_defaults=self.flower_defaults),
            node.home / "logs" / "supernode.log",
            process_env(node.home / "flwr-home"),
        )
        self.processes[name] = proc
        return proc

    def online(self) -> set[str]:
        """Institutions whose SuperNode the SuperLink sees as online."""
        status = {int(n["node-id"]): n.get("status") for n in self.coordinator.flower.list_nodes()}
        return {name for name, nid in self.node_ids.items() if status.get(nid) == "online"}

    def wait_online(self, names: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not names <= self.online():
            for name in names:
                proc = self.processes.get(name)
                if proc is not None and not proc.alive():
                    raise DeployError(
                        f"{proc.name} exited ({proc.returncode()}): {proc.log_tail(1500)}"
                    )
            if time.monotonic() > deadline:
                raise DeployError(f"not all of {sorted(names)} connected within {timeout:.0f} s")
            time.sleep(0.5)

    def stop(self) -> None:
        for proc in self.processes.values():
            proc.stop()
        self.coordinator.stop()

    def __enter__(self) -> LoopbackFederation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
