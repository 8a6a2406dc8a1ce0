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
    with pytest.raises(FloatingPointError, match="after 0 epochs: lower the learning rate or check the data$"):
        train.fit(model, tr, nn.functional.cross_entropy, opt, epochs=3, progress=False)


def test_bad_arguments_are_reported():
    model, opt, tr, _, _ = _setup()
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        train.fit(model, tr, nn.functional.cross_entropy, opt, epochs=0)
    with pytest.raises(ValueError, match="empty loader"):
        train.evaluate(model, [])
    with pytest.raises(ValueError, match="disagree on batch size"):
        train.accuracy(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(ValueError, match=r"one class label per example.*\(3, 4\).*task='regression'"):
        train.accuracy(torch.zeros(3, 2), torch.zeros(3, 4))
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


# ---- defects found from outside, each pinned by a test ------------------------------------------------------

def _tiny(seed=0, n=32, d=4, k=3, batch=8):
    """A small classification set and a model with dropout (so training itself consumes random numbers)."""
    g = torch.Generator().manual_seed(seed)
    X, y = torch.randn(n, d, generator=g), torch.randint(0, k, (n,), generator=g)
    loader = data.make_loader(X, y, batch_size=batch, seed=seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, k))
    return model, loader


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_fit_on_an_empty_loader_raises_a_clear_error():
    model, _ = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    empty = data.make_loader(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    for loader in ([], empty):
        with pytest.raises(ValueError, match="train_loader yielded no batches"):
            train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=1, progress=False)
    with pytest.raises(ValueError, match="empty loader"):
        train.evaluate(model, empty)


def test_fit_seed_makes_training_randomness_repeatable():
    """Dropout draws from torch's global generator: ``seed`` must fix it whatever happened before."""
    runs = []
    for seed, noise in ((5, 1), (5, 2), (6, 1)):
        model, loader = _tiny()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        torch.manual_seed(noise)  # a different global state before each run
        h = train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=2, seed=seed, progress=False)
        runs.append((h["train_loss"], _params(model)))
    assert runs[0][0] == runs[1][0] and all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert runs[0][0] != runs[2][0]


def test_fit_clip_grad_bounds_every_step():
    torch.manual_seed(0)
    X, y = torch.randn(16, 4) * 10, torch.randint(0, 3, (16,))
    loader = [(X, y)]
    steps = {}
    for clip in (None, 1e-3):
        torch.manual_seed(0)
        model = nn.Linear(4, 3)
        before = _params(model)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=1, clip_grad=clip, progress=False)
        steps[clip] = torch.cat([(a - b).ravel() for a, b in zip(_params(model), before)])
    assert steps[None].norm() > 0.1                         # the raw step is large ...
    assert steps[1e-3].norm() == pytest.approx(1e-3, rel=1e-4)  # ... the clipped one has norm clip_grad
    cos = torch.dot(steps[None], steps[1e-3]) / (steps[None].norm() * steps[1e-3].norm())
    assert cos == pytest.approx(1.0, abs=1e-5)              # in the same direction
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="clip_grad must be a positive number"):
            train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=1, clip_grad=bad, progress=False)


def _regression(n=64, d=3, out=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = X @ torch.randn(d, out, generator=g) + 0.1 * torch.randn(n, out, generator=g)
    return X, y


@pytest.mark.parametrize("out", [1, 3])
def test_fit_supports_regression_without_an_accuracy(out):
    X, y = _regression(out=out)
    tr, va = data.make_loader(X, y, batch_size=16), data.make_loader(X, y, batch_size=16, shuffle=False)
    torch.manual_seed(0)
    model = nn.Linear(3, out)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    h = train.fit(model, tr, nn.functional.mse_loss, opt, epochs=20, val_loader=va, progress=False)
    assert set(h.metrics) == {"train_loss", "val_loss"}           # no meaningless accuracy
    assert h["val_loss"][-1] < 0.1 * h["val_loss"][0]
    ev = train.evaluate(model, va, nn.functional.mse_loss)
    assert set(ev) == {"loss"} and ev["loss"] == pytest.approx(h.last("val_loss"), rel=1e-6)
    with pytest.raises(ValueError, match="regression.*needs a loss_fn"):
        train.evaluate(model, va)


def test_task_can_be_forced_and_binary_float_labels_count_as_classification():
    X = torch.randn(32, 2)
    y = (X[:, 0] > 0).float()                     # 0/1 floats for BCE-with-logits: classification
    loader = data.make_loader(X, y, batch_size=8)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    bce = nn.functional.binary_cross_entropy_with_logits
    h = train.fit(model, loader, bce, opt, epochs=5, progress=False)
    assert set(h.metrics) == {"train_loss", "train_acc"} and h.last("train_acc") > 0.8
    h = train.fit(model, loader, bce, opt, epochs=1, progress=False, task="regression")
    assert set(h.metrics) == {"train_loss"}
    assert set(train.evaluate(model, loader, bce, task="regression")) == {"loss"}
    ev = train.evaluate(model, loader, bce)
    assert set(ev) == {"acc", "loss"} and ev["acc"] > 0.8
    with pytest.raises(ValueError, match="task must be one of"):
        train.fit(model, loader, bce, opt, epochs=1, progress=False, task="ranking")
    with pytest.raises(ValueError, match="task must be one of"):
        train.evaluate(model, loader, bce, task="ranking")


@pytest.mark.parametrize("start_in_train_mode", [True, False])
def test_evaluate_restores_the_previous_mode_even_when_the_loader_fails(start_in_train_mode):
    model, loader = _tiny()
    model.train(start_in_train_mode)
    train.evaluate(model, loader)
    assert model.training is start_in_train_mode
    assert all(m.training is start_in_train_mode for m in model.modules())

    seen = []

    def failing():
        batch = next(iter(loader))
        seen.append(model.training)     # evaluate switched to eval mode ...
        yield batch
        raise OSError("disk gone")      # ... and the loader dies half-way

    with pytest.raises(OSError, match="disk gone"):
        train.evaluate(model, failing())
    assert seen == [False] and model.training is start_in_train_mode


def test_evaluate_moves_the_model_to_the_device_it_evaluates_on():
    model, loader = _tiny()
    moved = []
    original = model.to
    model.to = lambda *a, **k: (moved.append(torch.device(*a)), original(*a, **k))[1]
    train.evaluate(model, loader, device="cpu")
    assert moved == [torch.device("cpu")]


def test_asking_for_cuda_without_cuda_gives_dlcores_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, loader = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="'cuda' requested but CUDA is not available.*device='cpu'"):
        train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=1, device="cuda", progress=False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        train.evaluate(model, loader, device=torch.device("cuda"))
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        train.evaluate(model, loader, device="gpu")


def test_bad_batches_and_losses_get_clear_errors():
    model, loader = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = next(iter(loader))
    with pytest.raises(TypeError, match=r"each batch must be a pair \(inputs, targets\)"):
        train.fit(model, [X], nn.functional.cross_entropy, opt, epochs=1, progress=False)
    with pytest.raises(TypeError, match=r"each batch must be a pair"):
        train.evaluate(model, [(X, y, y)])
    per_example = lambda out, t: nn.functional.cross_entropy(out, t, reduction="none")  # noqa: E731
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar.*shape \(8,\)"):
        train.fit(model, [(X, y)], per_example, opt, epochs=1, progress=False)
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        train.evaluate(model, [(X, y)], per_example)
    for bad in (1.5, True, "2"):
        with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
            train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=bad, progress=False)


# ---- found by mutation testing (make mutation) -----------------------------------------------------------

def test_recorded_train_metrics_are_the_exact_example_weighted_means():
    """With lr = 0 nothing changes, so the epoch's running means must equal evaluate() on the same batches."""
    torch.manual_seed(0)
    X, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    loader = data.make_loader(X, y, batch_size=4, shuffle=False)   # batches of 4, 4 and 2: unequal weights
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    h = train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=2, val_loader=loader, progress=False)
    ev = train.evaluate(model, loader, nn.functional.cross_entropy)
    out = model(X)
    full = nn.functional.cross_entropy(out, y).item()
    for key, ref in (("train_loss", full), ("val_loss", full), ("train_acc", ev["acc"]), ("val_acc", ev["acc"])):
        assert h[key] == pytest.approx([ref, ref], rel=1e-6, abs=1e-12), key
    assert ev["loss"] == pytest.approx(full, rel=1e-6)
    assert ev["acc"] == pytest.approx((out.argmax(1) == y).float().mean().item(), rel=1e-6)
    assert len(train.History()) == 0 and len(h) == 2


def test_progress_bar_shows_description_epochs_and_metrics(capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    model, loader = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=2, desc="tiny run")
    err = capsys.readouterr().err
    last = err.rstrip("\n").split("\r")[-1]          # the bar is left on screen after the run
    assert "tiny run" in last and "2/2" in last and "train_loss=" in last and "train_acc=" in last
    train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=1)
    assert "training: 100%" in capsys.readouterr().err     # the default description, shown by default
    train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=1, progress=False)
    assert capsys.readouterr().err == ""


def test_error_messages_say_what_was_wrong_and_how_to_fix_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, loader = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ce = nn.functional.cross_entropy
    with pytest.raises(RuntimeError, match=r"pass device='cpu', or device=None to stay on the model's device "
                                           r"\(dlcore\.device\.get_device\(\) picks the best one this machine has\)"):
        train.fit(model, loader, ce, opt, epochs=1, device="cuda", progress=False)
    X, y = next(iter(loader))
    with pytest.raises(TypeError, match=r"got a list of length 1; a DataLoader over a TensorDataset\(X, y\) "
                                        r"\(e\.g\. dlcore\.data\.make_loader\) yields such pairs"):
        train.fit(model, [[X]], ce, opt, epochs=1, progress=False)
    with pytest.raises(TypeError, match=r"got a tuple of length 3;"):
        train.evaluate(model, [(X, y, y)])
    with pytest.raises(TypeError, match=r"got a Tensor;"):
        train.evaluate(model, [X])
    with pytest.raises(ValueError, match=r"got shape float; use reduction='mean'"):
        train.fit(model, [(X, y)], lambda out, t: 1.0, opt, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"got shape \(8,\); use reduction='mean'"):
        train.evaluate(model, [(X, y)], lambda out, t: ce(out, t, reduction="none"))
    with pytest.raises(ValueError, match=r"yielded no batches \(is the data set empty, or smaller than a batch "
                                         r"with drop_last=True\?\)"):
        train.fit(model, [], ce, opt, epochs=1, progress=False)


def test_fit_moves_the_model_to_the_device_it_trains_on():
    model, loader = _tiny()
    moved = []
    original = model.to
    model.to = lambda *a, **k: (moved.append(torch.device(*a)), original(*a, **k))[1]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=1, device="cpu", progress=False)
    assert moved and set(moved) == {torch.device("cpu")}


def test_models_without_parameters_and_on_other_devices():
    assert train._model_device(nn.ReLU()) == torch.device("cpu")
    assert train._model_device(nn.Linear(2, 2, device="meta")) == torch.device("meta")
    assert train._model_device(lambda x: x) == torch.device("cpu")              # a plain function as the model
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0], [1.0, 0.5]])
    y = torch.tensor([0, 0, 0])
    ev = train.evaluate(nn.Identity(), [(logits, y)], nn.functional.cross_entropy)  # no parameters: on the CPU
    assert ev["acc"] == pytest.approx(2 / 3)
    assert ev["loss"] == pytest.approx(nn.functional.cross_entropy(logits, y).item())


@pytest.mark.parametrize("shape", [(6,), (6, 1), (3, 2, 1)])
def test_zero_one_float_targets_for_one_output_are_classification(shape):
    logits = torch.linspace(-1, 1, 6).reshape(shape)
    y = (torch.arange(6) % 2).float().reshape(shape)
    bce = nn.functional.binary_cross_entropy_with_logits
    ev = train.evaluate(nn.Identity(), [(logits, y)], bce)
    assert set(ev) == {"acc", "loss"}
    assert ev["acc"] == train.accuracy(logits, y)
    y_real = y + 0.5
    assert set(train.evaluate(nn.Identity(), [(logits, y_real)], nn.functional.mse_loss)) == {"loss"}
    two = torch.zeros(6, 2)
    assert set(train.evaluate(nn.Identity(), [(two, two)], nn.functional.mse_loss)) == {"loss"}


def test_accuracy_for_sequences_soft_labels_and_the_step_at_zero():
    logits = torch.tensor([[[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]], [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])  # (n, T, k)
    assert train.accuracy(logits, torch.tensor([[1, 0], [2, 0]])) == 0.75
    assert train.accuracy(logits[:, :1], torch.tensor([[1], [0]])) == 0.5      # T = 1
    soft = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
    assert train.accuracy(torch.tensor([[0.0, 1.0], [0.0, 1.0]]), soft) == 0.5
    soft_seq = torch.softmax(logits * torch.tensor([1.0, -1.0])[:, None, None], dim=-1)   # (n, T, k) soft labels
    assert train.accuracy(logits, soft_seq) == 0.5
    assert train.accuracy(torch.tensor([0.0, -1e-6, 1e-6]), torch.tensor([1, 0, 1])) == 1.0  # step(0) = 1


def test_forced_classification_with_soft_labels_records_accuracy():
    torch.manual_seed(0)
    X = torch.randn(12, 4)
    soft = torch.softmax(torch.randn(12, 3) * 3, dim=1)      # probability targets (e.g. label smoothing)
    loader = data.make_loader(X, soft, batch_size=4, shuffle=False)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ce = nn.functional.cross_entropy
    h = train.fit(model, loader, ce, opt, epochs=1, val_loader=loader, task="classification", progress=False)
    assert set(h.metrics) == {"train_loss", "train_acc", "val_loss", "val_acc"}
    assert h.last("val_acc") == train.evaluate(model, loader, ce, task="classification")["acc"]
    assert set(train.fit(model, loader, ce, opt, epochs=1, progress=False).metrics) == {"train_loss"}  # auto


# ---- mixed precision (fit(amp=...)) ---------------------------------------------------------------------------

def test_amp_on_a_device_without_cuda_says_to_pass_amp_false():
    model, loader = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = _params(model)
    with pytest.raises(ValueError, match=r"needs a CUDA device, but training runs on 'cpu'; pass amp=False "
                                         r"\(or amp=device\.type == 'cuda'"):
        train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=1, amp=True, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model)))      # nothing trained
    with pytest.raises(ValueError, match="amp must be True or False"):
        train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=1, amp="fp16", progress=False)


class _RecordingScaler:
    """Wraps a real GradScaler and records the order of its calls."""

    def __init__(self, inner, calls):
        self.inner, self.calls = inner, calls

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def call(*a, **k):
            if name != "get_scale":                     # a query, not a step of the recipe
                self.calls.append(name)
            return method(*a, **k)
        return call


def _amp_on_cpu(monkeypatch, calls):
    """Let fit's amp path run on the CPU: CPU autocast (float16) and torch's CPU GradScaler are real."""
    monkeypatch.setattr(train, "_check_amp", lambda amp, device: None)
    real = train._grad_scaler
    monkeypatch.setattr(train, "_grad_scaler", lambda device: _RecordingScaler(real(device), calls))
    original_clip = nn.utils.clip_grad_norm_

    def clip(*a, **k):
        calls.append("clip")
        return original_clip(*a, **k)
    monkeypatch.setattr(train.nn.utils, "clip_grad_norm_", clip)


def test_amp_path_autocasts_the_forward_pass_and_scales_the_loss(monkeypatch):
    calls, dtypes = [], []
    _amp_on_cpu(monkeypatch, calls)
    torch.manual_seed(0)
    X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    loader = data.make_loader(X, y, batch_size=16, seed=0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    model[2].register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    h = train.fit(model, loader, nn.functional.cross_entropy, opt, epochs=5, val_loader=loader, amp=True,
                  progress=False)
    assert set(dtypes[:4]) == {train.AMP_DTYPE}             # training batches ran in float16 ...
    assert torch.float32 in dtypes                          # ... validation in full precision
    assert all(p.dtype == torch.float32 for p in model.parameters())   # master weights stay float32
    assert calls[:3] == ["scale", "step", "update"] and "unscale_" not in calls and "clip" not in calls
    assert h["train_loss"][-1] < h["train_loss"][0]


def test_amp_unscales_before_clipping_so_the_true_gradient_is_clipped(monkeypatch):
    calls = []
    _amp_on_cpu(monkeypatch, calls)
    torch.manual_seed(0)
    X, y = torch.randn(16, 4) * 0.01, torch.randint(0, 3, (16,))    # small: the scaled gradient fits float16
    model = nn.Linear(4, 3)
    before = _params(model)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    train.fit(model, [(X, y)], nn.functional.cross_entropy, opt, epochs=1, clip_grad=1e-3, amp=True,
              progress=False)
    assert calls == ["scale", "unscale_", "clip", "step", "update"]
    step = torch.cat([(a - b).ravel() for a, b in zip(_params(model), before)])
    # the true gradient norm is about 0.3; clipping the scaled one (scale 65536) would give a step of 1.5e-8
    assert step.norm().item() == pytest.approx(1e-3, rel=1e-2)


def test_amp_skips_the_step_and_the_scheduler_when_the_scaled_gradient_overflows(monkeypatch):
    """A scale of 2^40 makes float16 gradients overflow: the scaler must skip those steps (weights unchanged,
    scale halved), fit must not step the scheduler for them (torch would warn that the scheduler ran before
    the optimizer), and once the scale has come down the steps and the schedule proceed together."""
    import warnings
    monkeypatch.setattr(train, "_check_amp", lambda amp, device: None)
    scalers = []

    def big_scaler(device):
        scalers.append(torch.amp.GradScaler(device.type, init_scale=2.0 ** 40))
        return scalers[-1]
    monkeypatch.setattr(train, "_grad_scaler", big_scaler)
    torch.manual_seed(0)
    X, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    taken = []
    opt.register_step_post_hook(lambda *_: taken.append(1))   # counts the optimizer steps really taken
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.9 ** t)
    before = _params(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # "lr_scheduler.step() before optimizer.step()"
        train.fit(model, [(X, y)], nn.functional.cross_entropy, opt, epochs=1, scheduler=sched, amp=True,
                  progress=False)
    assert taken == [] and sched.last_epoch == 0        # the first step overflowed: nothing moved ...
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model)))
    assert scalers[-1].get_scale() == 2.0 ** 39         # ... and the scale was halved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train.fit(model, [(X, y)], nn.functional.cross_entropy, opt, epochs=40, scheduler=sched, amp=True,
                  progress=False)
    assert 0 < len(taken) < 40 and sched.last_epoch == len(taken)   # one schedule step per real update
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(before, _params(model)))


def test_amp_names_float16_overflow_when_the_loss_is_not_finite(monkeypatch):
    monkeypatch.setattr(train, "_check_amp", lambda amp, device: None)
    model = nn.Linear(4, 3)
    X, y = torch.full((8, 4), 1e5), torch.zeros(8, dtype=torch.long)    # 1e5 > float16's largest, 65504
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match=r"float16 forward pass may have overflowed \(try amp=False\)"):
        train.fit(model, [(X, y)], nn.functional.cross_entropy, opt, epochs=1, amp=True, progress=False)


# ---- checkpoints --------------------------------------------------------------------------------------------

def _double_run(model, opt, loader, epochs):
    for _ in range(epochs):
        for X, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(X), y).backward()
            opt.step()


def _resume_setup():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(40, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (40,), generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    return X, y, model


def test_resuming_from_a_checkpoint_continues_exactly_like_an_uninterrupted_run(tmp_path):
    X, y, model = _resume_setup()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loader = data.make_loader(X, y, batch_size=8, seed=3, dtype=torch.float64)
    _double_run(model, opt, loader, 4)                                # the uninterrupted run
    straight = _params(model)

    model.load_state_dict(init)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loader = data.make_loader(X, y, batch_size=8, seed=3, dtype=torch.float64)
    _double_run(model, opt, loader, 2)
    h = train.History()
    h.log(epoch=2)
    path = train.save_checkpoint(tmp_path / "run" / "ckpt.pt", model, opt, epoch=2, history=h,
                                 loader_rng=loader.generator.get_state())
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]   # no temporary left

    _, _, fresh = _resume_setup()
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=0.01)
    fresh_loader = data.make_loader(X, y, batch_size=8, seed=99, dtype=torch.float64)
    ckpt = train.load_checkpoint(path, fresh, fresh_opt)
    assert ckpt["epoch"] == 2 and isinstance(ckpt["history"], train.History) and ckpt["history"]["epoch"] == [2]
    fresh_loader.generator.set_state(ckpt["loader_rng"])
    _double_run(fresh, fresh_opt, fresh_loader, 2)
    assert all(torch.equal(a, b) for a, b in zip(straight, _params(fresh)))   # bit for bit


def test_the_resume_test_catches_an_optimizer_state_that_was_not_saved(tmp_path):
    """The planted bug: save only the model, so Adam restarts with zero moments; the runs then differ."""
    X, y, model = _resume_setup()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loader = data.make_loader(X, y, batch_size=8, shuffle=False, dtype=torch.float64)
    _double_run(model, opt, loader, 4)
    straight = _params(model)
    model.load_state_dict(init)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    _double_run(model, opt, loader, 2)
    path = train.save_checkpoint(tmp_path / "ckpt.pt", model)            # optimizer forgotten
    _, _, fresh = _resume_setup()
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=0.01)
    assert train.load_checkpoint(path, fresh)["optimizer"] is None
    with pytest.raises(ValueError, match=r"holds no optimizer state .* pass optimizer=None"):
        train.load_checkpoint(path, fresh, fresh_opt)
    _double_run(fresh, fresh_opt, loader, 2)
    gap = max((a - b).abs().max().item() for a, b in zip(straight, _params(fresh)))
    assert gap > 1e-4


def test_load_checkpoint_errors_name_what_is_wrong(tmp_path):
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at '.*nowhere\.pt': check the path"):
        train.load_checkpoint(tmp_path / "nowhere.pt", model)
    path = train.save_checkpoint(tmp_path / "ckpt.pt", model, torch.optim.SGD(model.parameters(), lr=0.1))
    wider = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
    before = _params(wider)
    with pytest.raises(ValueError, match=r"does not fit this model.*shapes differ: 0\.weight \(16, 4\) in the "
                                         r"checkpoint vs \(32, 4\) in the model"):
        train.load_checkpoint(path, wider)
    assert all(torch.equal(a, b) for a, b in zip(before, _params(wider)))   # nothing half-loaded
    deeper = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3), nn.ReLU(), nn.Linear(3, 3))
    with pytest.raises(ValueError, match=r"missing from the checkpoint: 4\.weight, 4\.bias"):
        train.load_checkpoint(path, deeper)
    with pytest.raises(ValueError, match=r"in the checkpoint but not in the model: 2\.weight, 2\.bias"):
        train.load_checkpoint(path, nn.Sequential(nn.Linear(4, 16)))
    two_groups = torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[2].parameters()}], lr=0.1)
    with pytest.raises(ValueError, match=r"parameters per group \[4\] in the checkpoint vs \[2, 2\] here"):
        train.load_checkpoint(path, model, two_groups)
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="not a checkpoint written by save_checkpoint"):
        train.load_checkpoint(tmp_path / "bare.pt", model)
    import numpy as np
    with pytest.raises(TypeError, match=r"field 'extra'\['a'\] is a ndarray.*torch\.as_tensor"):
        train.save_checkpoint(tmp_path / "bad.pt", model, extra={"a": np.zeros(2)})
    assert not (tmp_path / "bad.pt").exists()


def test_checkpoint_loads_onto_a_model_of_another_dtype_and_keeps_plain_extras(tmp_path):
    model = nn.Linear(3, 2).double()
    path = train.save_checkpoint(tmp_path / "c.pt", model, note="hello", steps=[1, 2], lr=0.5)
    other = nn.Linear(3, 2)                                    # float32: load_state_dict casts
    ckpt = train.load_checkpoint(path, other, map_location="cpu")
    assert (ckpt["note"], ckpt["steps"], ckpt["lr"]) == ("hello", [1, 2], 0.5)
    assert torch.allclose(other.weight.double(), model.weight)
