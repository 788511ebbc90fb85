"""The task registry: what the federation can train, shared by institutions and coordinator."""

from __future__ import annotations

from fl_client.tasks import breast_cancer, credit_default, digits
from fl_client.tasks.base import Task

_REGISTRY: dict[str, Task] = {
    t.name: t for t in (credit_default.TASK, breast_cancer.TASK, digits.TASK)
}


class UnknownTaskError(KeyError):
    def __str__(self) -> str:
        return f"unknown task {self.args[0]!r}; choose one of: {', '.join(sorted(_REGISTRY))}"


def get_task(name: str) -> Task:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownTaskError(name) from None


def list_tasks() -> list[Task]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


__all__ = ["Task", "UnknownTaskError", "get_task", "list_tasks"]
