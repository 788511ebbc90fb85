import numpy as np
import pytest
import torch

from fl_client.data import prepare, validate_frame
from fl_client.tasks import UnknownTaskError, get_task, list_tasks
from fl_client.training import evaluate, make_loader, make_optimizer, train_epochs


def test_registry_lists_the_bundled_tasks() -> None:
    assert [t.name for t in list_tasks()] == ["breast-cancer", "credit-default", "digits"]
    assert get_task("digits").modality == "image"
    with pytest.raises(UnknownTaskError, match="choose one of"):
        get_task("fraud")


def test_credit_default_one_hot_uses_fixed_vocabulary() -> None:
    task = get_task("credit-default")
    df = validate_frame(task.reference_data(), task.schema)
    small = df[df["purpose"] == "car (new)"].head(30)  # a table lacking most purposes
    data = prepare(small, task.schema, 0.2, 0)
    assert data.x_train.shape[1] == task.schema.input_dim == 61
    assert task.schema.classes[-1] == "bad"  # the positive class


@pytest.mark.parametrize("name", ["credit-default", "breast-cancer", "digits"])
def test_each_task_learns_its_bundled_data(name: str) -> None:
    torch.manual_seed(0)
    task = get_task(name)
    data = prepare(validate_frame(task.reference_data(), task.schema), task.schema, 0.25, 0)
    model = task.build_model()
    before = evaluate(model, task, data.x_test, data.y_test, torch.device("cpu"))
    loader = make_loader(data.x_train, data.y_train, task.batch_size, 0)
    train_epochs(
        model,
        loader,
        make_optimizer(model, task.learning_rate),
        task.loss(),
        5,
        torch.device("cpu"),
    )
    after = evaluate(model, task, data.x_test, data.y_test, torch.device("cpu"))
    assert after["loss"] < before["loss"]
    floor = {"credit-default": 0.70, "breast-cancer": 0.93, "digits": 0.90}[name]
    assert after["accuracy"] > floor
    assert ("auc" in after) == task.is_binary


def test_metrics_auc_for_binary_only() -> None:
    task = get_task("breast-cancer")
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    m = task.metrics(y, probs)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["auc"] == pytest.approx(1.0)
