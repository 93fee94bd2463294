"""Search throughput and per-trial storage overhead.

Part 1, trials per hour: EEGNet on the synthetic dataset, no pruning, a fixed number of epochs
per trial, with ``--workers 1`` and ``--workers 2`` (each worker gets cores / workers threads;
with ``--device auto`` on a GPU machine, workers share the GPUs round-robin).

Part 2, overhead per trial: many very short trials (one epoch on 64 trials) against each
storage; the overhead is the wall time per trial minus the time spent inside training
(``seconds`` attribute of each trial), i.e. sampling, storage writes, heartbeats and the
target checks, and is shown as a share of a typical pruned (10-epoch) and full (300-epoch)
EEGNet trial on this machine.

    python benchmarks/throughput.py [--epochs 5] [--trials 8] [--short-trials 40]
        [--workers 1 2] [--device cpu] [--amp]
        [--storages journal sqlite postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import optuna

from eegtune.data.synthetic import make_synthetic
from eegtune.device import configure_process, resolve_device
from eegtune.search.plan import SearchPlan, plan_search
from eegtune.search.run import run_search
from eegtune.search.storages import open_storage


def timed_search(settings: SearchPlan, data=None) -> tuple[float, list]:
    t0 = time.perf_counter()
    run_search(settings, data_set=data)
    wall = time.perf_counter() - t0
    study = optuna.load_study(study_name=settings.name, storage=open_storage(settings.storage))
    return wall, study.trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--short-trials", type=int, default=40, help="0 skips part 2")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu", help="cpu, or auto to spread over GPUs")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument(
        "--storages",
        nargs="+",
        default=["journal", "sqlite", "postgresql://postgres@127.0.0.1:5432/test"],
    )
    args = parser.parse_args()
    configure_process(resolve_device(args.device))  # as the CLI's entry point does
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"# trials per hour: eegnet, synthetic, {args.trials} trials x {args.epochs} "
            f"epochs, no pruning, device {args.device}" + (", amp" if args.amp else "")
        )
        print(f"{'workers':>7} {'wall s':>8} {'trials/h':>9} {'epoch s':>8}")
        epoch_seconds = None
        for workers in args.workers:
            settings = plan_search(
                model="eegnet",
                study_name="eegnet",
                trials=args.trials,
                epochs=args.epochs,
                storage=str(Path(tmp) / f"w{workers}.journal"),
                dataset="synthetic",
                device=args.device,
                pruner="none",
                workers=workers,
                amp=args.amp,
            )
            wall, trials = timed_search(settings)
            per_epoch = sum(t.user_attrs["seconds"] for t in trials) / (len(trials) * args.epochs)
            epoch_seconds = epoch_seconds or per_epoch
            print(
                f"{workers:>7} {wall:>8.1f} {3600 * args.trials / wall:>9.0f} {per_epoch:>8.3f}",
                flush=True,
            )

        if args.short_trials < 1:
            return
        print(f"\n# storage overhead: {args.short_trials} trials of 1 epoch on 64 trials")
        print(
            f"{'storage':<12} {'ms/trial':>9} {'% of 10-epoch trial':>20} "
            f"{'% of 300-epoch trial':>21}"
        )
        tiny = make_synthetic(n_train=80, n_test=8, seed=0)
        for kind in args.storages:
            url = {"journal": str(Path(tmp) / "o.journal"), "sqlite": f"sqlite:///{tmp}/o.db"}.get(
                kind, kind
            )
            name = f"overhead-{uuid.uuid4().hex[:6]}"
            settings = plan_search(
                model="eegnet",
                trials=args.short_trials,
                epochs=1,
                storage=url,
                dataset="synthetic",
                device="cpu",
                pruner="none",
                study_name=name,
                val_fraction=0.2,
            )
            try:
                wall, trials = timed_search(settings, tiny)
            except Exception as exc:  # an unreachable server: report and go on
                print(f"{kind.split(':')[0]:<12} skipped ({exc})")
                continue
            inside = sum(t.user_attrs["seconds"] for t in trials)
            overhead = (wall - inside) / len(trials)
            typical_short, typical_full = 10 * epoch_seconds, 300 * epoch_seconds
            print(
                f"{kind.split(':')[0]:<12} {1000 * overhead:>9.1f} "
                f"{100 * overhead / typical_short:>19.2f}% {100 * overhead / typical_full:>20.3f}%",
                flush=True,
            )
            if not url.startswith(("sqlite", "/")) and "journal" not in url:
                optuna.delete_study(study_name=name, storage=open_storage(url))


if __name__ == "__main__":
    main()
