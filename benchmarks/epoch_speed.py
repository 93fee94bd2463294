"""Time one training epoch plus validation pass of each network: eegtune's fit() vs a naive loop.

The naive loop is what lab scripts do: a DataLoader over CPU tensors, a per-batch ``.to(device)``,
``loss.item()`` every batch, and validation through the same DataLoader in batches of 64.
Both sides train the same network on the same synthetic split (864 train / 216 val trials),
batch 64, Adam; each is timed over several epochs after one warm-up epoch, side by side, in
alternating rounds; the faster round of each side is kept. Every measurement runs in a fresh
process, as a lab script would: the eegtune side calls ``configure_process()`` as the CLI does
(on CPU it tunes the process's malloc, ``tune_cpu_allocator``), and that setting must not leak
into the naive side. For an honest attribution a second naive
column runs the naive loop after ``tune_cpu_allocator()``, and a last column times
``fit(amp=True)`` (bfloat16 autocast).

    python benchmarks/epoch_speed.py [--epochs 3] [--models eegnet deepconvnet] [--rounds 2]
"""

from __future__ import annotations

import argparse
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from eegtune.data.dataset import stratified_split
from eegtune.data.synthetic import make_synthetic
from eegtune.device import configure_process, resolve_device, tune_cpu_allocator
from eegtune.models.networks import build_model
from eegtune.training import fit, set_seed


def lab_model(model_name: str) -> nn.Module:
    """The network as a lab script has it: eegtune's layers with plain ``nn.Dropout``."""
    return build_model(model_name, "elu", 0.25, dropout_layer=nn.Dropout)


def benchmark_data():
    full = make_synthetic(seed=0)
    tr, va = stratified_split(full.y_train, 0.2, seed=0)
    return full.x_train[tr], full.y_train[tr], full.x_train[va], full.y_train[va]


def naive_epoch_seconds(
    model_name: str, device: torch.device, epochs: int, tuned_allocator: bool = False
) -> float:
    if tuned_allocator:
        tune_cpu_allocator()
    x, y, xv, yv = (torch.as_tensor(a) for a in benchmark_data())
    set_seed(0)
    model = lab_model(model_name).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    train_loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=64)
    times = []
    for _ in range(epochs + 1):
        t0 = time.perf_counter()
        model.train()
        total, correct = 0.0, 0
        for xb, yb in train_loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            optimizer.step()
            total += loss.item()
            correct += (out.argmax(1) == yb).sum().item()
        model.eval()
        with torch.no_grad():
            for xb, yb in val_loader:
                xb, yb = xb.to(device), yb.to(device)
                out = model(xb)
                correct += (out.argmax(1) == yb).sum().item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sum(times[1:]) / epochs


def eegtune_epoch_seconds(
    model_name: str, device: torch.device, epochs: int, amp: bool = False
) -> float:
    configure_process(device)  # what the CLI's entry point does before training
    set_seed(0)
    model = build_model(model_name, "elu", 0.25)
    result = fit(
        model,
        *benchmark_data(),
        epochs=epochs + 1,
        lr=1e-3,
        batch_size=64,
        weight_decay=1e-3,
        device=device,
        amp=amp,
    )
    return sum(r.seconds for r in result.history[1:]) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per side")
    parser.add_argument("--models", nargs="+", default=["eegnet", "deepconvnet"])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; min is kept")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(
        f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
        f"threads, torch {torch.__version__}, device {device}, {args.epochs} timed epochs"
    )
    print(
        f"{'model':<12} {'naive s/epoch':>14} {'naive+malloc':>13} {'eegtune s/epoch':>16} "
        f"{'speed-up':>9} {'--amp s/epoch':>14} {'speed-up':>9}"
    )
    for name in args.models:
        best = dict.fromkeys(("naive", "naive+malloc", "eegtune", "amp"), float("inf"))
        for _ in range(args.rounds):  # alternate so that machine noise hits every side
            runs = {
                "naive": (naive_epoch_seconds, name, device, args.epochs),
                "naive+malloc": (naive_epoch_seconds, name, device, args.epochs, True),
                "eegtune": (eegtune_epoch_seconds, name, device, args.epochs),
                "amp": (eegtune_epoch_seconds, name, device, args.epochs, True),
            }
            if device.type != "cpu":  # the malloc setting is a CPU matter
                del runs["naive+malloc"]
            for key, (func, *func_args) in runs.items():
                best[key] = min(best[key], in_fresh_process(func, *func_args))
        naive, ours, amp = best["naive"], best["eegtune"], best["amp"]
        malloc = best["naive+malloc"]
        malloc_cell = f"{malloc:>13.3f}" if malloc < float("inf") else f"{'-':>13}"
        print(
            f"{name:<12} {naive:>14.3f} {malloc_cell} {ours:>16.3f} "
            f"{naive / ours:>8.2f}x {amp:>14.3f} {naive / amp:>8.2f}x",
            flush=True,
        )


def in_fresh_process(func, *args):
    """Run ``func(*args)`` in a new interpreter, so no process-wide setting carries over."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(func, *args).result()


if __name__ == "__main__":
    main()
