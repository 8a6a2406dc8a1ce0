import pytest
import torch
from torch import nn

from dlcore import data, train


def _setup(seed=0):
    torch.manual_seed(seed)
    s = data.load_digits(seed=0, flatten=True)
    tr, va, te = data.loaders(s, batch_size=64, seed=seed)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, opt, tr, va, te


def test_fit_learns_digits_and_records_history():
    model, opt, tr, va, te = _setup()
    h = train.fit(model, tr, nn.functional.cross_entropy, opt, epochs=5, val_loader=va, seed=0, progress=False)
    assert len(h) == 5 and set(h.metrics) == {"train_loss", "train_acc", "val_loss", "val_acc"}
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert train.evaluate(model, te)["acc"] > 0.85
    epoch, best = h.best("val_acc")
    assert best == max(h["val_acc"]) and h.last("val_acc") == h["val_acc"][-1]
    assert h.best("val_loss", mode="min")[1] == min(h["val_loss"])


def test_fit_is_deterministic_given_a_seed():
    runs = []
    for _ in range(2):
        model, opt, tr, va, _ = _setup(seed=1)
        h = train.fit(model, tr, nn.functional.cross_entropy, opt, epochs=2, seed=1, progress=False)
        runs.append((h["train_loss"], [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_fit_with_scheduler_and_clipping():
    model, opt, tr, va, _ = _setup()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    train.fit(model, tr, nn.functional.cross_entropy, opt, epochs=1, scheduler=sched, clip_grad=1.0,
              progress=False)
    assert opt.param_groups[0]["lr"] < 0.1


def test_fit_stops_with_a_clear_error_when_the_loss_diverges():
    model, _, tr, _, _ = _setup()
    opt = torch.optim.SGD(model.parameters(), lr=1e12)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train.fit(model, tr, nn.functional.cross_entropy, opt, epochs=3, progress=False)


def test_bad_arguments_are_reported():
    model, opt, tr, _, _ = _setup()
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        train.fit(model, tr, nn.functional.cross_entropy, opt, epochs=0)
    with pytest.raises(ValueError, match="empty loader"):
        train.evaluate(model, [])
    with pytest.raises(ValueError, match="disagree on batch size"):
        train.accuracy(torch.zeros(3, 2), torch.zeros(4))
    h = train.History()
    with pytest.raises(KeyError, match="no metric 'acc'"):
        h["acc"]
    h.log(acc=1.0)
    with pytest.raises(ValueError, match="mode must be"):
        h.best("acc", mode="top")
    assert "acc" in h


def test_accuracy_for_multiclass_and_single_logit():
    assert train.accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0])) == 0.5
    assert train.accuracy(torch.tensor([[1.5], [-2.0]]), torch.tensor([1, 0])) == 1.0


def test_evaluate_restores_training_mode():
    model, *_ , te = _setup()
    model.train()
    out = train.evaluate(model, te, nn.functional.cross_entropy)
    assert model.training and set(out) == {"acc", "loss"}
