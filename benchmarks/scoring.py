"""How should a trial be scored, and the winner chosen, so that the chosen configuration
*tests* best? One hold-out, ``--folds 3``, ``--folds 5``, each with and without finalist racing.

Each search is a ``compare`` cell (EEGNet, ELU fixed, the lab's settings as trial 0, TPE,
Hyperband) on one dataset and one search seed. Then, in this benchmark only, every completed
configuration the search trained is retrained on the whole training set for its chosen epoch
count (seed 0) and tested once: the best of those test accuracies is what the search could
have handed back, and the regret of a choice is the gap to it. Per setting and dataset: test
accuracy of the chosen configuration (mean and sd over search seeds), regret, and the cost in
hold-out epochs (an epoch on K folds trains K-1 training sets' worth: (K-1)/0.8 hold-out
epochs).

    python benchmarks/scoring.py search --dataset realistic --out bench/  # phase 1, resumable
    python benchmarks/scoring.py table --out bench/                       # races and the table
    python benchmarks/scoring.py lab --dataset realistic                  # lab settings, references
    python benchmarks/scoring.py warm --dataset realistic --out bench/    # warm start, cold vs warm
    python benchmarks/scoring.py regret --storage S --prefix P --seeds 3  # a real compare's regret

Phase 1 writes one JSON file per (dataset, scoring, search seed) with every trial and its test
accuracy; phase 2 races the finalists of each stored study (``eegtune.results.racing``) and
prints the table of BENCHMARKS.md. The ``warm`` phase searches the three activation cells of
EEGNet in compare's order twice per search seed, cold (each from its baseline alone) and warm
(each later cell also from the earlier cells' best configurations): same trial budget, same
seeds, the first cell shared; it prints the chosen configurations' test accuracy (paired by
seed and cell) and the epochs each spent. The ``regret`` phase measures a real ``eegtune
compare`` run: it copies each cell study named ``PREFIX-*`` out of the compare's storage (the
compare's storage is never written), retrains every other completed trial with the compare's
test seeds through the same evaluation code (the compare's own tuned and baseline results are
reused, not retrained) and prints each cell's chosen test accuracy, the best one trained, and
the regret.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from eegtune.data.loading import load_dataset
from eegtune.device import configure_process, resolve_device
from eegtune.files import atomic_write_text
from eegtune.names import ACTIVATIONS
from eegtune.results.compare import cell_plans, search_cell, warm_configs
from eegtune.results.evaluate import chosen_epochs, evaluate_study, plan_evaluation
from eegtune.search.storages import open_storage
from eegtune.search.study import completed_trials, load_seeds, load_study, quiet_optuna
from eegtune.training import predict, train_configuration

FOLDS = (1, 3, 5)


def retrain_test(data, params: dict, epochs: int) -> float:
    """Test accuracy of one configuration retrained on the whole training set (seed 0)."""
    model, _ = train_configuration(
        "eegnet", params, data.x_train, data.y_train, shape=data.model_kwargs, epochs=epochs,
        seed=0,
    )  # fmt: skip
    return float((predict(model, data.x_test) == data.y_test).mean())


def _start(args: argparse.Namespace, cache_name: str) -> tuple:
    """The dataset, the output folder and the cache of test accuracies (``cache_name``)."""
    quiet_optuna()
    configure_process(resolve_device("cpu"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_file = out / cache_name
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    return load_dataset(args.dataset), out, cache_file, cache


def _tested(data, cache: dict, cache_file: Path, params: dict, epochs: int) -> float:
    """:func:`retrain_test`, once per (params, epochs): kept in ``cache_file`` at once."""
    key = json.dumps([params, epochs], sort_keys=True)
    if key not in cache:
        cache[key] = retrain_test(data, params, epochs)
        atomic_write_text(cache_file, json.dumps(cache))
    return cache[key]


def search_phase(args: argparse.Namespace) -> None:
    data, out, cache_file, cache = _start(args, f"tests-{args.dataset}.json")
    for seed in range(args.seeds):
        for folds in args.folds:
            result = out / f"{args.dataset}-folds{folds}-seed{seed}.json"
            if result.exists():
                continue
            storage = str(out / f"{args.dataset}-folds{folds}-seed{seed}.journal")
            (plan,) = cell_plans(
                ["eegnet"], ["elu"], f"bench-{args.dataset}", trials=args.trials,
                epochs=args.epochs, storage=storage, seed=seed, dataset=args.dataset,
                device="cpu", folds=folds,
            )  # fmt: skip
            opened = open_storage(storage)
            started = time.perf_counter()
            search_cell(plan, baseline=True, data_set=data, storage=opened)
            seconds = time.perf_counter() - started
            study = load_study(opened, plan.name)
            trials = []
            for t in study.trials:
                row = {
                    "number": t.number, "state": t.state.name, "value": t.value,
                    "params": t.params, "epochs": len(t.intermediate_values),
                    "baseline": bool(t.user_attrs.get("baseline")),
                    "fold_values": t.user_attrs.get("fold_values"),
                }  # fmt: skip
                if t.state.name == "COMPLETE":
                    row["chosen_epochs"] = chosen_epochs(t)
                    row["test"] = _tested(data, cache, cache_file, t.params, row["chosen_epochs"])
                trials.append(row)
            record = {
                "dataset": args.dataset, "folds": folds, "seed": seed, "trials": trials,
                "storage": storage, "study": plan.name, "search_seconds": seconds,
                "trial_budget": args.trials, "max_epochs": args.epochs,
            }  # fmt: skip
            atomic_write_text(result, json.dumps(record, indent=1))
            best = max((t for t in trials if "test" in t), key=lambda t: (t["value"], -t["number"]))
            print(f"{args.dataset} folds {folds} seed {seed}: chose trial {best['number']} "
                  f"test {100 * best['test']:.1f}%, best trained "
                  f"{100 * max(t['test'] for t in trials if 'test' in t):.1f}%, "
                  f"{sum(t['epochs'] for t in trials)} epochs, {seconds:.0f} s",
                  flush=True)  # fmt: skip


def cost(record: dict) -> float:
    """Epochs spent, in hold-out epochs (an epoch on K folds: (K-1)/0.8 of one)."""
    folds = record["folds"]
    per_epoch = 1.0 if folds == 1 else (folds - 1) / 0.8
    return per_epoch * sum(t["epochs"] for t in record["trials"])


def table_phase(args: argparse.Namespace) -> None:
    from eegtune.results.racing import race_study

    configure_process(resolve_device("cpu"))
    out = Path(args.out)
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*-folds*-seed*.json"))]
    if args.only:  # race one dataset's studies (stored with them), e.g. one process each
        records = [r for r in records if r["dataset"] == args.only]
    datasets = sorted({r["dataset"] for r in records})
    rows: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for dataset in datasets:
        data = load_dataset(dataset)
        cache_file = out / f"tests-{dataset}.json"
        cache = json.loads(cache_file.read_text())
        for record in (r for r in records if r["dataset"] == dataset):
            trials = [t for t in record["trials"] if "test" in t]
            best_test = max(t["test"] for t in trials)
            chosen = max(trials, key=lambda t: (t["value"], -t["number"]))
            name = "hold-out" if record["folds"] == 1 else f"folds {record['folds']}"
            lab = next((t for t in trials if t["baseline"]), None)
            if lab is not None and record["folds"] == 1:  # the same trial 0 in every setting
                rows.setdefault(("the lab's settings (trial 0)", dataset), []).append(
                    (lab["test"], best_test - lab["test"], lab["epochs"])
                )
            rows.setdefault((name, dataset), []).append(
                (chosen["test"], best_test - chosen["test"], cost(record))
            )
            if record["folds"] not in args.race_folds:
                continue
            opened = open_storage(record["storage"])
            race = race_study(opened, load_study(opened, record["study"]), data,
                              top=args.finalists, splits=args.splits)  # fmt: skip
            by_number = {t["number"]: t for t in trials}
            won = by_number[race.winner]
            key = json.dumps([won["params"], won["chosen_epochs"]], sort_keys=True)
            test = cache.get(key, won["test"])
            rows.setdefault((f"{name} + racing", dataset), []).append(
                (test, best_test - test, cost(record) + race.cost)
            )
    heads = " | ".join(f"{d}: test % (mean ± sd), regret, epochs" for d in datasets)
    print(f"| scoring | {heads} |")
    print("|---|" + "---|" * len(datasets))
    for name in dict.fromkeys(n for n, _ in rows):
        cells = []
        for dataset in datasets:
            values = rows.get((name, dataset), [])
            if not values:
                cells.append("-")
                continue
            tests = [100 * v[0] for v in values]
            regret = statistics.fmean(100 * v[1] for v in values)
            epochs = statistics.fmean(v[2] for v in values)
            cells.append(f"{statistics.fmean(tests):.1f} ± {statistics.pstdev(tests):.1f}, "
                         f"{regret:.1f}, {epochs:.0f}")  # fmt: skip
        print(f"| {name} | {' | '.join(cells)} |  (n={len(rows[(name, datasets[0])])})")


def lab_phase(args: argparse.Namespace) -> None:
    """The lab's own settings (ELU) as the lab trains them (300 epochs), over 3 training
    seeds, and the classical references, for the "how far from the best" row."""
    from eegtune.names import LAB_SETTINGS
    from eegtune.results.references import run_references

    configure_process(resolve_device("cpu"))
    data = load_dataset(args.dataset)
    params = {**LAB_SETTINGS, "activation": "elu"}
    tests = []
    for seed in range(3):
        model, _ = train_configuration(
            "eegnet", params, data.x_train, data.y_train, shape=data.model_kwargs,
            epochs=args.lab_epochs, seed=seed,
        )  # fmt: skip
        tests.append(100 * float((predict(model, data.x_test) == data.y_test).mean()))
    print(f"{args.dataset}: lab settings, {args.lab_epochs} epochs: test "
          f"{statistics.fmean(tests):.1f} ± {statistics.pstdev(tests):.1f} ({tests})")  # fmt: skip
    for r in run_references(data):
        print(f"{args.dataset}: {r.title}: test {100 * (r.accuracy or 0):.1f}%, {r.seconds:.1f} s")


def warm_phase(args: argparse.Namespace) -> None:
    """Cold against warm-started cells at the same trial budget (see the module's doc)."""
    data, out, cache_file, cache = _start(args, f"tests-warm-{args.dataset}.json")
    activations = list(ACTIVATIONS)
    for seed in range(args.seeds):
        result = out / f"{args.dataset}-warm-seed{seed}.json"
        if result.exists():
            continue
        storage = str(out / f"{args.dataset}-warm-seed{seed}.journal")
        opened = open_storage(storage)
        request = dict(trials=args.trials, epochs=args.epochs, storage=storage, seed=seed,
                       dataset=args.dataset, device="cpu")  # fmt: skip
        cold = cell_plans(["eegnet"], activations, f"cold-{args.dataset}", **request)
        warm = cell_plans(["eegnet"], activations[1:], f"warm-{args.dataset}", **request)
        for plan in cold:
            search_cell(plan, baseline=True, data_set=data, storage=opened)
        sources = [load_study(opened, cold[0].name)]
        for plan in warm:
            queued = warm_configs(sources, plan.activation)
            search_cell(plan, baseline=True, data_set=data, storage=opened, warm=queued)
            sources.append(load_study(opened, plan.name))
        record: dict = {"dataset": args.dataset, "seed": seed, "cold": {}, "warm": {}}
        for mode, plans in (("cold", cold), ("warm", [cold[0], *warm])):
            for plan in plans:
                study = load_study(opened, plan.name)
                chosen = completed_trials(study)[0]
                epochs = chosen_epochs(chosen)
                record[mode][plan.activation] = {
                    "test": _tested(data, cache, cache_file, chosen.params, epochs),
                    "chosen": chosen.number,
                    "warm_source": chosen.user_attrs.get("warm_start"),
                    "epochs": sum(len(t.intermediate_values) for t in study.trials),
                }  # fmt: skip
        atomic_write_text(result, json.dumps(record, indent=1))
        print(
            f"{args.dataset} seed {seed}: "
            + "; ".join(
                f"{a} cold {100 * record['cold'][a]['test']:.1f} / warm "
                f"{100 * record['warm'][a]['test']:.1f}"
                for a in activations[1:]
            ),
            flush=True,
        )
    found = sorted(out.glob(f"{args.dataset}-warm-seed*.json"))
    records = [json.loads(p.read_text()) for p in found]
    diffs = [100 * (r["warm"][a]["test"] - r["cold"][a]["test"])
             for r in records for a in activations[1:]]  # fmt: skip
    for mode in ("cold", "warm"):
        tests = [100 * r[mode][a]["test"] for r in records for a in activations[1:]]
        epochs = [r[mode][a]["epochs"] for r in records for a in activations[1:]]
        won = sum(bool(r[mode][a]["warm_source"]) for r in records for a in activations[1:])
        print(
            f"| {args.dataset} | {mode} | {statistics.fmean(tests):.1f} ± "
            f"{statistics.pstdev(tests):.1f} | {statistics.fmean(epochs):.0f} | {won} |"
        )
    print(
        f"{args.dataset}: warm - cold, later cells: mean {statistics.fmean(diffs):+.1f} points "
        f"over {len(diffs)} pairs ({sorted(round(d, 1) for d in diffs)})"
    )


def regret_phase(args: argparse.Namespace) -> None:
    """Regret of each cell of a finished ``eegtune compare`` run (see the module's doc)."""
    import optuna

    data, out, _, _ = _start(args, "tests-regret.json")  # the cache is the copies' own seeds
    source = open_storage(args.storage)
    copies = open_storage(str(out / "regret.journal"))
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(source)
                   if s.study_name.startswith(f"{args.prefix}-"))  # fmt: skip
    if not names:
        raise SystemExit(f"no study named {args.prefix}-* in {args.storage}")
    copied = {s.study_name for s in optuna.get_all_study_summaries(copies)}
    print("| cell | chosen | test % of chosen | best trained (trial) | regret | lab's settings |")
    print("|---|---|---|---|---|---|")
    for name in names:
        if name not in copied:
            optuna.copy_study(from_study_name=name, from_storage=source, to_storage=copies)
        study = load_study(copies, name)
        seeds = load_seeds(copies, study)
        if "tuned" not in seeds:
            raise SystemExit(f"cell {name} has no tested choice: let its compare finish first")
        tuned = seeds["tuned"][0]["trial"]  # what the compare chose and tested
        configs = {label: study.trials[records[0]["trial"]] for label, records in seeds.items()}
        for t in completed_trials(study):
            if t.number not in {c.number for c in configs.values()}:
                configs[f"trial {t.number}"] = t
        plan = plan_evaluation(copies, name, seeds=args.seeds, configs=configs,
                               models_dir=out / "models")  # fmt: skip
        tested = {e.trial: 100 * statistics.fmean(e.test_acc)
                  for e in evaluate_study(plan, data, storage=copies)}  # fmt: skip
        best = max(tested, key=lambda n: (tested[n], -n))
        lab = seeds.get("baseline", {0: {"trial": None}})[0]["trial"]
        lab_text = "-" if lab is None else f"{tested[lab]:.1f}"
        print(f"| {name} | trial {tuned} | {tested[tuned]:.1f} | {tested[best]:.1f} (trial {best}) "
              f"| {tested[best] - tested[tuned]:.1f} | {lab_text} |", flush=True)  # fmt: skip


def folds_list(value: str) -> list[int]:
    """``1,3,5`` -> [1, 3, 5]."""
    return [int(k) for k in value.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["search", "table", "lab", "warm", "regret"])
    parser.add_argument("--dataset", default="realistic", help="realistic or synthetic")
    parser.add_argument("--out", default="bench-scoring", help="folder for studies and results")
    parser.add_argument(
        "--seeds", type=int, default=3, help="search seeds (regret: the compare's test seeds)"
    )
    parser.add_argument("--folds", type=folds_list, default=list(FOLDS),
                        help="search: these scorings only (1: hold-out)")  # fmt: skip
    parser.add_argument("--storage", default="", help="regret: the compare's storage")
    parser.add_argument("--prefix", default="", help="regret: the compare's cell prefix")
    parser.add_argument("--trials", type=int, default=8, help="trials per search")
    parser.add_argument("--epochs", type=int, default=20, help="maximum epochs per trial")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--lab-epochs", type=int, default=300, help="lab: epochs of the lab run")
    parser.add_argument("--only", default="", help="table: race only this dataset's studies")
    parser.add_argument("--finalists", type=int, default=3, help="table: finalists raced")
    parser.add_argument("--splits", type=int, default=2, help="table: fresh splits per race")
    parser.add_argument(
        "--race-folds",
        type=folds_list,
        default=list(FOLDS),
        help="table: race the studies of these folds",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    phases = {"search": search_phase, "table": table_phase, "lab": lab_phase, "warm": warm_phase,
              "regret": regret_phase}  # fmt: skip
    phases[args.phase](args)


if __name__ == "__main__":
    main()
