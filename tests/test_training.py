"""fit(): learning, determinism, the stop hook, divergence and device resolution."""

from __future__ import annotations

import platform
import subprocess
import sys

import numpy as np
import pytest
import torch

from eegtune.data.dataset import stratified_split
from eegtune.data.synthetic import make_synthetic
from eegtune.device import resolve_device
from eegtune.errors import ConfigError
from eegtune.models.networks import build_model
from eegtune.training import evaluate_accuracy, fit, set_seed


@pytest.fixture(scope="module")
def small_data():
    data = make_synthetic(n_train=240, n_test=60, seed=5)
    tr, va = stratified_split(data.y_train, 0.25, seed=0)
    return data.x_train[tr], data.y_train[tr], data.x_train[va], data.y_train[va]


def _run(data, seed=0, epochs=3, **kwargs):
    set_seed(seed)
    model = build_model("eegnet", "elu", 0.25)
    return model, fit(model, *data, epochs=epochs, lr=1e-3, batch_size=32, seed=seed, **kwargs)


def test_same_seed_same_run_on_cpu(small_data) -> None:
    _, a = _run(small_data, seed=7)
    _, b = _run(small_data, seed=7)
    _, c = _run(small_data, seed=8)
    strip = lambda r: [(h.train_loss, h.train_acc, h.val_loss, h.val_acc) for h in r.history]  # noqa: E731
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_history_has_one_record_per_epoch(small_data) -> None:
    _, result = _run(small_data, epochs=4)
    assert result.status == "completed" and [h.epoch for h in result.history] == [1, 2, 3, 4]
    assert all(0 <= h.train_acc <= 1 and 0 <= h.val_acc <= 1 for h in result.history)
    best = max(result.history, key=lambda h: h.val_acc)
    assert result.best_val_acc == best.val_acc and result.best_epoch == best.epoch


def test_callback_stops_the_run(small_data) -> None:
    seen = []
    _, result = _run(small_data, epochs=10, callback=lambda rec: seen.append(rec) or rec.epoch == 2)
    assert result.status == "stopped" and len(result.history) == 2 and len(seen) == 2


def test_non_finite_loss_ends_with_diverged_status(small_data) -> None:
    x, y, xv, yv = small_data
    bad = x.copy()
    bad[0, 0, 0, 0] = np.inf
    _, result = _run((bad, y, xv, yv), epochs=3)
    assert result.status == "diverged" and "non-finite" in result.message
    assert result.history == []


def test_training_without_validation(small_data) -> None:
    x, y, _, _ = small_data
    set_seed(0)
    model = build_model("eegnet")
    result = fit(model, x, y, epochs=2, batch_size=64)
    assert result.best_epoch == 2 and result.best_val_acc is None
    loss, acc = evaluate_accuracy(model, x, y)
    assert np.isfinite(loss) and 0 <= acc <= 1


@pytest.mark.slow
def test_eegnet_learns_synthetic_data() -> None:
    data = make_synthetic(seed=0)
    tr, va = stratified_split(data.y_train, 0.2, seed=0)
    set_seed(0)
    model = build_model("eegnet", "elu", 0.25)
    result = fit(
        model,
        data.x_train[tr],
        data.y_train[tr],
        data.x_train[va],
        data.y_train[va],
        epochs=15,
        lr=1e-3,
        batch_size=64,
        weight_decay=1e-3,
    )
    assert 0.65 < result.best_val_acc < 0.98


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu:banana")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda:0")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"epochs": 0}, "epochs"), ({"epochs": 1, "batch_size": 0}, "batch size")],
)
def test_fit_rejects_bad_settings(small_data, kwargs, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment):
        fit(build_model("eegnet"), *small_data, **kwargs)


def _reference_fit(model, x, y, xv, yv, *, epochs, lr, batch_size, seed):
    """The plain path: NCHW layout, per-batch work as a lab script does it, same shuffling."""
    from torch import nn

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y, xv, yv = (torch.as_tensor(a) for a in (x, y, xv, yv))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    curve = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            curve.append((model(xv).argmax(1) == yv).float().mean().item())
    return curve


@pytest.mark.parametrize("name", ["eegnet", "deepconvnet"])
def test_fast_path_learns_what_the_plain_path_learns(small_data, name) -> None:
    """channels-last layout, device-side metrics and batched evaluation change nothing."""
    set_seed(0)
    plain = build_model(name, "elu", dropout=0.0)
    set_seed(0)
    fast = build_model(name, "elu", dropout=0.0)
    expected = _reference_fit(plain, *small_data, epochs=3, lr=1e-3, batch_size=32, seed=0)
    result = fit(fast, *small_data, epochs=3, lr=1e-3, batch_size=32, seed=0)
    assert [r.val_acc for r in result.history] == pytest.approx(expected, abs=0.02)


def test_cpu_dropout_keeps_nn_dropout_semantics() -> None:
    from torch import nn

    from eegtune.models.networks import Dropout

    drop = Dropout(0.3)
    assert isinstance(drop, nn.Dropout)
    x = torch.ones(200_000, requires_grad=True)
    out = drop(x)
    kept = out != 0
    assert kept.float().mean().item() == pytest.approx(0.7, abs=0.01)
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.7))
    out.sum().backward()
    assert torch.equal(x.grad != 0, kept)
    drop.eval()
    assert torch.equal(drop(x), x)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.75])
def test_cpu_dropout_mask_rates_and_layout(p: float) -> None:
    """Both 16-bit halves of each random draw drop at rate p, independently; the output keeps
    the input's channels-last layout; an odd element count and p near 1 work."""
    from eegtune.models.networks import Dropout

    torch.manual_seed(0)
    drop = Dropout(p)
    kept = drop(torch.ones(1_000_001)) != 0
    assert kept.float().mean().item() == pytest.approx(1 - p, abs=0.003)
    pairs = kept[:-1].view(-1, 2).float()
    assert pairs.mean(dim=0).tolist() == pytest.approx([1 - p, 1 - p], abs=0.004)
    assert abs(torch.corrcoef(pairs.T)[0, 1].item()) < 0.01
    x = torch.randn(8, 32, 1, 187).contiguous(memory_format=torch.channels_last)
    out = drop(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out[out != 0], (x * (1 / (1 - p)))[out != 0])
    assert (Dropout(0.99999)(torch.ones(10_000)) != 0).sum() < 10


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc only")
def test_tuned_allocator_reuses_freed_memory_without_page_faults() -> None:
    """After tune_cpu_allocator(), freeing and reallocating a 48 MB activation-sized block
    costs no page faults once the heap has settled; with glibc's defaults (mmap above 32 MB)
    every reuse faults on all of its pages."""
    code = """
import resource, sys, torch
from eegtune.device import tune_cpu_allocator
if sys.argv[1] == "tuned":
    assert tune_cpu_allocator()
for _ in range(20):  # the heap settles (aligned requests need a few coalesced blocks)
    torch.empty(12 << 20).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.empty(12 << 20).fill_(1.0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    faults = {}
    for mode in ("default", "tuned"):
        run = subprocess.run(
            [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True
        )
        faults[mode] = int(run.stdout.split()[-1])
    assert faults["default"] > 10 * 10_000  # 48 MB / 4 KiB pages = 12,288 faults per reuse
    assert faults["tuned"] < 1_000


def test_amp_learns_what_float32_learns() -> None:
    """bfloat16 autocast: the same validation curve within a few points."""
    data = make_synthetic(n_train=480, n_test=8, seed=2)
    tr, va = stratified_split(data.y_train, 0.25, seed=0)
    split = (data.x_train[tr], data.y_train[tr], data.x_train[va], data.y_train[va])
    curves = []
    for amp in (False, True):
        set_seed(0)
        model = build_model("eegnet", "elu", 0.25)
        result = fit(model, *split, epochs=8, lr=3e-3, batch_size=32, seed=0, amp=amp)
        assert result.status == "completed"
        curves.append([r.val_acc for r in result.history])
    assert curves[0] != curves[1]  # it really ran in another precision
    assert max(abs(a - b) for a, b in zip(*curves, strict=True)) < 0.08
    assert abs(curves[0][-1] - curves[1][-1]) < 0.05


def test_fit_changes_nothing_process_wide_the_entry_points_do() -> None:
    """fit() as a library leaves malloc and cuDNN alone; the CLI calls configure_process()."""
    code = """
import sys, torch
from eegtune import device, training
from eegtune.data.synthetic import make_synthetic
from eegtune.models.networks import build_model
data = make_synthetic(n_train=64, n_test=8)
training.fit(build_model("eegnet"), data.x_train, data.y_train, epochs=1)
print(device._allocator_tuned, torch.backends.cudnn.benchmark)
device.configure_process(torch.device("cpu"))
print(device._allocator_tuned is not None)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["None", "False", "True"]


def test_fit_leaves_the_callers_random_state_as_it_was() -> None:
    import copy

    from eegtune.data.synthetic import make_synthetic
    from eegtune.models.networks import build_model
    from eegtune.training import fit

    data = make_synthetic(n_train=64, n_test=8)
    model = build_model("eegnet", dropout=0.5)
    twin = copy.deepcopy(model)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = fit(model, data.x_train, data.y_train, epochs=1, seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    # the run draws its dropout from its own seed, whatever state the caller left
    torch.manual_seed(999)
    second = fit(twin, data.x_train, data.y_train, epochs=1, seed=4)
    assert first.history[0].train_loss == second.history[0].train_loss


def test_train_command_tunes_the_process_at_its_entry(monkeypatch) -> None:
    from typer.testing import CliRunner

    from eegtune import device
    from eegtune.cli.app import app

    calls = []
    monkeypatch.setattr(device, "configure_process", lambda dev: calls.append(dev.type))
    result = CliRunner().invoke(
        app, ["train", "--dataset", "synthetic", "--epochs", "1", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert calls == ["cpu"]


def test_dropout_draws_from_the_runs_generator_and_the_model_keeps_none() -> None:
    from eegtune.data.synthetic import make_synthetic
    from eegtune.models.networks import Dropout, build_model
    from eegtune.training import fit

    data = make_synthetic(n_train=64, n_test=8)
    model = build_model("eegnet", dropout=0.5)
    layers = [m for m in model.modules() if isinstance(m, Dropout)]
    assert layers
    seen = []
    real_random = torch.Tensor.random_

    def spy(tensor, *args, **kwargs):
        seen.append(kwargs.get("generator"))
        return real_random(tensor, *args, **kwargs)

    torch.Tensor.random_ = spy  # type: ignore[method-assign]
    try:
        fit(model, data.x_train, data.y_train, epochs=1, seed=2)
    finally:
        torch.Tensor.random_ = real_random  # type: ignore[method-assign]
    assert seen and all(isinstance(g, torch.Generator) for g in seen)
    assert len({id(g) for g in seen}) == 1  # one generator, the run's
    assert all(layer.generator is None for layer in layers)


def test_train_configuration_is_the_recipe_of_train_trials_and_evaluate(
    tmp_path, monkeypatch
) -> None:
    """One function trains a configuration for `train`, each search trial and `evaluate`."""
    from typer.testing import CliRunner

    from eegtune import training
    from eegtune.cli.app import app

    calls: list[tuple[str, int]] = []
    real = training.train_configuration

    def counted(model_name, params, *args, **kwargs):
        calls.append((model_name, kwargs["epochs"]))
        return real(model_name, params, *args, **kwargs)

    for module in ("eegtune.training", "eegtune.search.objective", "eegtune.results.evaluate"):
        monkeypatch.setattr(f"{module}.train_configuration", counted)
    runner = CliRunner()
    common = ["--dataset", "synthetic", "--device", "cpu"]
    assert runner.invoke(app, ["train", "--epochs", "1", *common]).exit_code == 0
    journal = str(tmp_path / "r.journal")
    search = ["search", "--model", "eegnet", "--trials", "1", "--epochs", "2", "--pruner",
              "none", "--storage", journal, *common]  # fmt: skip
    assert runner.invoke(app, search).exit_code == 0
    evaluate = ["evaluate", "--storage", journal, "--seeds", "1", "--device", "cpu",
                "--models-dir", str(tmp_path / "m")]  # fmt: skip
    result = runner.invoke(app, evaluate)
    assert result.exit_code == 0, result.output
    assert [c[0] for c in calls] == ["eegnet", "eegnet", "eegnet"]
    assert calls[0][1] == 1 and calls[1][1] == 2


def test_train_configuration_repeats_itself_and_changes_no_global_state() -> None:
    from eegtune.data.synthetic import make_synthetic
    from eegtune.training import train_configuration

    data = make_synthetic(n_train=64, n_test=8)
    params = {"activation": "elu", "dropout": 0.5, "lr": 1e-3, "batch_size": 16,
              "weight_decay": 0.0}  # fmt: skip
    before = torch.random.get_rng_state()
    runs = [
        train_configuration(
            "eegnet", params, data.x_train, data.y_train, shape=data.model_kwargs, epochs=2, seed=5
        )  # fmt: skip
        for _ in range(2)
    ]
    assert torch.equal(torch.random.get_rng_state(), before)
    first, second = (model.state_dict() for model, _ in runs)
    assert all(torch.equal(first[k], second[k]) for k in first)
    losses = [[(r.train_loss, r.train_acc) for r in result.history] for _, result in runs]
    assert losses[0] == losses[1]


SWALLOWED = """
import signal
from eegtune import signals
from eegtune.data.synthetic import make_synthetic
from eegtune.training import train_configuration

signals.install()
try:  # as when the signal lands in a finaliser (__del__), where Python drops the exception
    signals._raise_once(signal.SIGTERM, None)
except KeyboardInterrupt:
    pass
assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # later signals are ignored now
data = make_synthetic(n_train=40, n_test=8, seed=0)
params = {"activation": "elu", "dropout": 0.25, "lr": 1e-3, "batch_size": 16, "weight_decay": 0}
seen = []
try:
    train_configuration("eegnet", params, data.x_train, data.y_train, shape=data.model_kwargs,
                        epochs=50, seed=0, callback=seen.append)
except signals.Interrupted as exc:
    print("stopped", exc.signum, len(seen))
"""


def test_a_stop_signal_a_finaliser_swallowed_still_stops_training() -> None:
    out = subprocess.run([sys.executable, "-c", SWALLOWED], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["stopped", "15", "0"]  # before the first epoch trained
