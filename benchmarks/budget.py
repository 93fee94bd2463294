"""Time to quality at the budget a user has: which search policy hands back the configuration
that *tests* best for the epochs it spends, at 5, 10, 20 and 40 trials?

Phases:

    python benchmarks/budget.py pool --out bench/budget            # the portfolio's raw data
    python benchmarks/budget.py portfolio --out bench/budget       # greedy portfolio from it
    python benchmarks/budget.py search --epochs 20 --out bench/budget  # resumable; run 2 at once
    python benchmarks/budget.py lab --out bench/budget             # lab's settings, references
    python benchmarks/budget.py table --out bench/budget [--png F] # table and figure

``pool`` trains random configurations of the EEGNet space (seeded, the lab's settings among
them) on *pool* datasets: other seeds and sizes of the generators than the evaluation datasets
(synthetic seed 1 at 540 trials, realistic seed 1 at 540, small seeds 1 and 2), each on the
whole training set for ``--epochs`` and tested once at the end. ``portfolio`` chooses greedily
the few configurations that together minimise the mean regret across the pool datasets (the
portfolio construction of auto-sklearn 2.0): the registry's ``PORTFOLIOS`` come from it.

``search`` runs one policy on the evaluation datasets (synthetic, realistic, small: seed 0, the
ones users get) for every budget and search seed: each search is a real ``eegtune search``
(EEGNet, all activations, Hyperband). Every completed configuration is then retrained on the
whole training set for its chosen epochs (seed 0) and tested once (cached by configuration):
the test accuracy of the chosen one is what the policy hands back, the best of them gives the
regret, and the epochs of every trial what it cost (an epoch on K folds counts (K-1)/0.8
hold-out epochs: K-1 training sets' worth of trials).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from eegtune.data.dataset import Dataset
from eegtune.data.loading import load_dataset
from eegtune.data.realistic import SMALL_TRAIN_TRIALS, make_realistic, make_small
from eegtune.data.synthetic import make_synthetic
from eegtune.device import configure_process, resolve_device
from eegtune.files import atomic_write_text
from eegtune.names import LAB_EPOCHS, LAB_SETTINGS, PORTFOLIOS
from eegtune.search.plan import sized_folds
from eegtune.search.space import load_space
from eegtune.search.study import quiet_optuna
from eegtune.training import predict, train_configuration

DATASETS = ("synthetic", "realistic", "small")
BUDGETS = (5, 10, 20, 40)


def pool_datasets() -> dict[str, Dataset]:
    """Datasets the portfolio is built on: none of them is one the search is judged on."""
    return {
        "synthetic-s1-540": make_synthetic(n_train=540, n_test=540, seed=1),
        "realistic-s1-540": make_realistic(1, 270, name="realistic-s1"),
        "small-s1": make_small(seed=1),
        "small-s2": make_small(seed=2),
    }


def retrain_test(data: Dataset, params: dict[str, Any], epochs: int) -> float:
    """Test accuracy of one configuration trained on the whole training set (seed 0)."""
    model, _ = train_configuration(
        "eegnet", params, data.x_train, data.y_train, shape=data.model_kwargs, epochs=epochs,
        seed=0,
    )  # fmt: skip
    return float((predict(model, data.x_test) == data.y_test).mean())


def random_configs(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` configurations of the EEGNet preset drawn at random (seeded), the lab's first."""
    import optuna

    space = load_space("eegnet")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    configs: list[dict[str, Any]] = [{**LAB_SETTINGS, "activation": "elu"}]
    while len(configs) < n:
        trial = study.ask()
        configs.append(space.sample(trial))
        study.tell(trial, 0.0)
    return configs


def _load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def pool_phase(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pool.json"
    pool = _load_json(path) or {"configs": random_configs(args.configs, 0), "tests": {}}
    atomic_write_text(path, json.dumps(pool, indent=1))
    for name, data in pool_datasets().items():
        tests = pool["tests"].setdefault(name, [])
        for params in pool["configs"][len(tests) :]:
            started = time.perf_counter()
            tests.append(retrain_test(data, params, args.epochs))
            atomic_write_text(path, json.dumps(pool, indent=1))
            print(f"{name} config {len(tests) - 1}: test {100 * tests[-1]:.1f}% "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip


def greedy_portfolio(tests: dict[str, list[float]], size: int) -> list[tuple[int, float]]:
    """Indices chosen one at a time, each the one that lowers the mean regret across datasets
    most (regret: the best test accuracy in the pool minus the best among the chosen), with
    the mean regret after each pick."""
    names = list(tests)
    table = np.array([tests[n] for n in names])  # datasets x configs
    best = table.max(axis=1)
    chosen: list[tuple[int, float]] = []
    for _ in range(size):
        taken = [i for i, _ in chosen]
        scores = []
        for j in range(table.shape[1]):
            if j in taken:
                scores.append(np.inf)
                continue
            reach = table[:, [*taken, j]].max(axis=1)
            scores.append(float((best - reach).mean()))
        pick = int(np.argmin(scores))
        chosen.append((pick, scores[pick]))
    return chosen


def portfolio_phase(args: argparse.Namespace) -> None:
    pool = _load_json(Path(args.out) / "pool.json")
    tests = {name: t for name, t in pool["tests"].items() if len(t) == len(pool["configs"])}
    print(f"pool: {len(pool['configs'])} configurations x {len(tests)} datasets "
          f"({', '.join(tests)})")  # fmt: skip
    for index, regret in greedy_portfolio(tests, args.size):
        params = pool["configs"][index]
        row = " ".join(f"{100 * tests[n][index]:.1f}" for n in tests)
        print(f"config {index}: {params}  test {row}  mean regret after it "
              f"{100 * regret:.2f} points")  # fmt: skip
    lab = " ".join(f"{100 * tests[n][0]:.1f}" for n in tests)
    best = " ".join(f"{100 * max(tests[n]):.1f}" for n in tests)
    print(f"lab's settings (config 0): test {lab}; best in pool {best}")


# ------------------------------------------------------------------------------------ search

POLICIES: dict[str, dict[str, Any]] = {
    # eegtune 0.1's default: univariate TPE after 10 random trials, one 20% hold-out
    "today": {"sampler": "tpe-classic", "portfolio": False, "folds": 1},
    # item 1 alone: multivariate TPE, start-up sized to the target
    "tpe": {"sampler": "tpe", "portfolio": False, "folds": 1},
    # items 1 and 2: then the portfolio first
    "portfolio": {"sampler": "tpe", "portfolio": True, "folds": 1},
    # items 1-3: scoring sized to the data too (differs from "portfolio" on small data only)
    "default": {"sampler": "tpe", "portfolio": True, "folds": None},
}


def run_budgets(policy: str) -> tuple[int, ...]:
    """The targets a policy is run at; smaller budgets are read from a run's first trials
    where that is the run a smaller target would make (today's fixed start-up: every prefix;
    the sized start-up is 3 trials for targets 5 and 10: the 10-trial run's first 5). A
    40-trial run resumes the 20-trial study (both have 5 start-up trials, so its first 20 are
    the 20-trial run's). The sampler alone ("tpe") is run at 20 trials only."""
    return {"today": (40,), "tpe": (20,)}.get(policy, (10, 20, 40))


def prefixes(policy: str, budget: int) -> tuple[int, ...]:
    """The targets of the runs whose first ``budget`` trials are a search of ``budget``, the
    one to use first: today's fixed start-up makes every run's prefix one (its 40-trial run
    where there is one, else its 20-trial one)."""
    if policy == "today":
        return tuple(t for t in (40, 20) if t >= budget)
    return (10,) if budget <= 10 and policy != "tpe" else (budget,)


SMALL_EPOCHS = 5
"""``small`` trials get this many times ``--epochs``: 128 training trials make an epoch of 2
steps at batch 64 (synthetic's 864 make 13.5), and at 20 epochs nothing learns (51-56% test
in a first run); 100 epochs give about the optimiser steps of 20 on the larger sets."""


def max_epochs(dataset: str, epochs: int) -> int:
    return epochs * SMALL_EPOCHS if dataset == "small" else epochs


def eval_datasets() -> dict[str, Dataset]:
    """The datasets users get by these names (seed 0)."""
    return {name: load_dataset(name, Path("data")) for name in DATASETS}


class TestRecorder:
    """Records every epoch's test accuracy of the model a trial trains (on K folds: the first
    fold's model, which costs one test pass, not K), by wrapping the training step: the search
    itself is unchanged."""

    def __init__(self, data: Dataset) -> None:
        import torch

        self.x = torch.as_tensor(data.x_test)
        self.y = torch.as_tensor(data.y_test)
        self.epochs: dict[int, float] = {}

    def install(self) -> None:
        import torch

        from eegtune import training

        original = training._Run.epoch
        recorder = self

        def epoch(run: Any, number: int) -> Any:
            record = original(run, number)
            if not isinstance(record, str) and number not in recorder.epochs:  # fold 1 only
                with torch.no_grad():
                    x, y = recorder.x.to(run.device), recorder.y.to(run.device)
                    _, acc = training._evaluate(run.model, x, y)
                recorder.epochs[number] = acc
            return record

        training._Run.epoch = epoch  # type: ignore[method-assign]

        from eegtune.search import objective

        train = objective._train

        def wrapped(job: Any, config: Any, seed: int, on_epoch: Any, trial: Any) -> Any:
            recorder.epochs = {}
            result = train(job, config, seed, on_epoch, trial)
            curve = [round(recorder.epochs[e], 5) for e in sorted(recorder.epochs)]
            trial.set_user_attr("test_curve", curve)
            return result

        objective._train = wrapped


def search_jobs(policies: list[str], seeds: int) -> list[tuple[str, str, int, int]]:
    """(policy, dataset, target, seed), most needed first: every policy's 20-trial searches
    (the small data's scoring first: it decides the default there), then the 10-trial ones,
    the 40-trial ones (resuming the 20-trial studies) and the folds on small data at 10 and
    40, then the sampler alone's further seeds."""
    jobs: list[tuple[str, str, int, int]] = []
    for seed in range(seeds):
        jobs += [("default", "small", 20, seed), ("portfolio", "small", 20, seed)]
    for seed in range(seeds):
        for dataset in DATASETS:  # today's 40-trial run gives every budget; 20 gives up to 20
            jobs += [("today", dataset, 40 if seed == 0 else 20, seed)]
            jobs += [("portfolio", dataset, 20, seed)]
    for target in (10, 40):
        for seed in range(seeds):
            jobs += [("portfolio", dataset, target, seed) for dataset in DATASETS]
    for target in (10, 40):
        jobs += [("default", "small", target, seed) for seed in range(seeds)]
    for seed in range(seeds):
        jobs += [("tpe", dataset, 20, seed) for dataset in DATASETS]
    jobs += [("today", dataset, 40, seed) for seed in range(1, seeds) for dataset in DATASETS]
    return [job for job in jobs if job[0] in policies]


def run_one(out: Path, policy: str, dataset: str, data: Dataset, target: int, seed: int,
            epochs: int) -> dict[str, Any]:  # fmt: skip
    """One search; every finished trial's value, epochs, scoring and test curve."""
    import optuna

    from eegtune.search.plan import plan_search
    from eegtune.search.run import run_search

    settings = POLICIES[policy]
    key = f"{policy}-{dataset}-t{target}-s{seed}"
    name = f"{policy}-{dataset}-t20-s{seed}" if target == 40 and policy != "today" else key
    journal = out / "studies" / f"{key}.log"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.unlink(missing_ok=True)  # a run cut short starts over: its numbers must be whole
    first = out / "studies" / f"{policy}-{dataset}-t20-s{seed}.log"
    if target == 40 and policy != "today" and first.exists():  # the 20-trial study, resumed
        shutil.copyfile(first, journal)  # (without it: the same study trained from trial 0)
    plan = plan_search(
        "eegnet", target, epochs=epochs, study_name=name, storage=str(journal),
        sampler=settings["sampler"], seed=seed, dataset=dataset, device="cpu",
        folds=settings["folds"], portfolio=settings["portfolio"],
    )  # fmt: skip
    started = time.perf_counter()
    run_search(plan, data_set=data)
    from eegtune.search.storages import open_storage

    study = optuna.load_study(study_name=plan.name, storage=open_storage(str(journal)))
    folds = int(study.user_attrs.get("folds", 1) or 1)
    trials = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if t.state.name not in ("COMPLETE", "PRUNED"):
            continue
        trials.append({
            "number": t.number, "state": t.state.name, "value": t.value,
            "params": t.params, "epochs": t.user_attrs.get("epochs_trained", 0),
            "best_epoch": t.user_attrs.get("best_epoch"),
            "portfolio": t.user_attrs.get("portfolio"),
            "test_curve": t.user_attrs.get("test_curve", []),
        })  # fmt: skip
    return {"key": key, "policy": policy, "dataset": dataset, "target": target, "seed": seed,
            "epochs": epochs, "folds": folds, "n_val": _n_val(data, folds),
            "seconds": round(time.perf_counter() - started, 1), "trials": trials}  # fmt: skip


def _n_val(data: Dataset, folds: int) -> int:
    return len(data.y_train) if folds > 1 else round(0.2 * len(data.y_train))


def search_phase(args: argparse.Namespace) -> None:
    out = Path(args.out)
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    jobs = search_jobs(args.policy.split(","), args.seeds)
    datasets = eval_datasets()
    recorders = {name: TestRecorder(data) for name, data in datasets.items()}
    installed: TestRecorder | None = None
    for policy, dataset, target, seed in jobs:
        if (runs / f"{policy}-{dataset}-t{target}-s{seed}.json").exists():
            continue  # done before: the benchmark resumes
        if policy == "today" and (runs / f"today-{dataset}-t40-s{seed}.json").exists():
            continue  # its first trials are every smaller search
        path = runs / f"{policy}-{dataset}-t{target}-s{seed}.json"
        if target == 40 and policy != "today" and not (
            runs / f"{policy}-{dataset}-t20-s{seed}.json"
        ).exists():
            continue  # resumes the 20-trial study: not done yet
        if POLICIES[policy]["portfolio"] and not PORTFOLIOS.get("eegnet"):
            raise SystemExit("no eegnet portfolio in the registry yet: run the portfolio phase")
        claim = path.with_suffix(".take")
        try:  # several processes share the jobs: each takes the next one nobody holds
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        recorder = recorders[dataset]
        if installed is None:
            recorder.install()
            installed = recorder
        installed.x, installed.y = recorder.x, recorder.y  # one wrapper, this dataset's test
        epochs = max_epochs(dataset, args.epochs)
        result = run_one(out, policy, dataset, datasets[dataset], target, seed, epochs)
        atomic_write_text(path, json.dumps(result))
        claim.unlink()
        print(f"{path.name}: {len(result['trials'])} trials, {result['seconds']:.0f} s",
              flush=True)  # fmt: skip


# ----------------------------------------------------------------------------- lab, table


def lab_phase(args: argparse.Namespace) -> None:
    """The lab's settings as the lab trains them (300 epochs, seed 0; ELU, the lab's network
    default) and the classical references, once per evaluation dataset."""
    from eegtune.results.references import run_references

    out = Path(args.out)
    path = out / "lab.json"
    lab = _load_json(path)
    for name, data in eval_datasets().items():
        if name in lab:
            continue
        started = time.perf_counter()
        test = retrain_test(data, {**LAB_SETTINGS, "activation": "elu"}, LAB_EPOCHS)
        refs = {r.name: r.accuracy for r in run_references(data)}
        lab[name] = {"lab": test, "lab_epochs": LAB_EPOCHS, "references": refs}
        atomic_write_text(path, json.dumps(lab, indent=1))
        print(f"{name}: lab's settings {100 * test:.1f}%, references {refs} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip


def chosen_at(run: dict[str, Any], budget: int) -> dict[str, float] | None:
    """What a search of ``budget`` trials hands back: the test accuracy of its best-scored
    trial (at the epoch its score came from), the regret (the best test among the trials it
    trained, at their own scored epochs, minus it) and the epochs it spent (an epoch on K folds
    counts K-1 training sets of K/(K-1) the size... see :func:`epoch_cost`)."""
    trials = run["trials"][:budget]
    if len(trials) < budget:
        return None
    scored = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]
    if not scored:
        return None

    def test_of(t: dict[str, Any]) -> float:
        curve, epoch = t["test_curve"], t["best_epoch"] or len(t["test_curve"])
        return float(curve[min(epoch, len(curve)) - 1])

    best = max(scored, key=lambda t: (t["value"], -t["number"]))
    test = test_of(best)
    cost = epoch_cost(run["folds"])
    return {
        "test": test,
        "regret": max(test_of(t) for t in scored) - test,
        "epochs": sum(t["epochs"] for t in trials) * cost,
    }


def epoch_cost(folds: int) -> float:
    """Hold-out epochs one epoch costs: K folds train K models on (K-1)/K of the training set
    each, K-1 training sets' worth; a hold-out epoch trains on 0.8 of it."""
    return 1.0 if folds <= 1 else (folds - 1) / 0.8


def stop_prefix(run: dict[str, Any], space: Any) -> int:
    """How many trials the 40-trial run would have trained with ``--stop-when-flat``: the
    verdict is taken before each new trial, on the completed trials so far."""
    from types import SimpleNamespace

    from eegtune.search.stopping import flat_verdict

    trials = run["trials"]
    for n in range(len(trials)):
        frozen = [SimpleNamespace(value=t["value"], params=t["params"])
                  for t in trials[:n] if t["state"] == "COMPLETE"]  # fmt: skip
        verdict = flat_verdict(space, frozen, run["n_val"], run["seed"])  # type: ignore[arg-type]
        if verdict is not None and verdict.stop:
            return n
    return len(trials)


def small_default(datasets_sizes: int = SMALL_TRAIN_TRIALS) -> str:
    """Which runs are the registry's default on ``small``: "folds" when a new study on it is
    scored on folds (:func:`eegtune.search.plan.sized_folds`), else the hold-out's
    "portfolio"."""
    labels = np.repeat([0, 1], datasets_sizes // 2)
    return "folds" if sized_folds(labels, 0.2) > 1 else "portfolio"


def collect_rows(out: Path) -> list[dict[str, Any]]:
    """One row per (policy, dataset, budget, seed). The "default" runs (the portfolio with
    scoring sized to the data) differ from "portfolio" on small data only: they are listed as
    "folds"; "default" is then what the registry's defaults do on each dataset."""
    runs = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    have = {(r["policy"], r["dataset"], r["seed"], r["target"]) for r in runs}
    rows = []
    for run in runs:
        policy = "folds" if run["policy"] == "default" else run["policy"]
        for budget in BUDGETS:
            key = run["policy"], run["dataset"], run["seed"]
            first = [t for t in prefixes(run["policy"], budget) if (*key, t) in have]
            if not first or first[0] != run["target"]:
                continue
            got = chosen_at(run, budget)
            if got is not None:
                rows.append({"policy": policy, "dataset": run["dataset"], "budget": budget,
                             "seed": run["seed"], **got})  # fmt: skip
    default = {d: ("portfolio" if d != "small" else small_default()) for d in DATASETS}
    rows += [{**r, "policy": "default"} for r in rows if r["policy"] == default[r["dataset"]]]
    space = load_space("eegnet")
    for run in runs:  # --stop-when-flat: the default's 40-trial run, cut where it would stop
        policy = "folds" if run["policy"] == "default" else run["policy"]
        if run["target"] == 40 and policy == default[run["dataset"]]:
            n = stop_prefix(run, space)
            got = chosen_at(run, n)
            if got is not None:
                rows.append({"policy": "default+stop", "dataset": run["dataset"], "budget": 40,
                             "seed": run["seed"], "stopped_at": n, **got})  # fmt: skip
    return rows


TABLE_POLICIES = ("today", "tpe", "portfolio", "folds", "default", "default+stop")


def table_phase(args: argparse.Namespace) -> None:
    out = Path(args.out)
    rows = collect_rows(out)
    lab = _load_json(out / "lab.json")
    policies = [p for p in TABLE_POLICIES if any(r["policy"] == p for r in rows)]
    print("test accuracy of the configuration handed back (%), mean over search seeds; "
          "regret (points); epochs spent per dataset")  # fmt: skip
    head = ("| policy | trials | " + " | ".join(DATASETS) + " | mean | regret | epochs ("
            + " / ".join(DATASETS) + ") | search seeds |")  # fmt: skip
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    summary: dict[tuple[str, int], float] = {}
    for policy in policies:
        for budget in BUDGETS:
            cells, regrets, epochs, seeds, stops = [], [], [], [], []
            for dataset in DATASETS:
                got = [r for r in rows if (r["policy"], r["dataset"], r["budget"]) ==
                       (policy, dataset, budget)]  # fmt: skip
                cells.append(statistics.fmean(r["test"] for r in got) if got else None)
                regrets += [r["regret"] for r in got]
                epochs.append(f"{statistics.fmean(r['epochs'] for r in got):.0f}" if got else "-")
                seeds.append(str(len(got)))
                stops += [r["stopped_at"] for r in got if "stopped_at" in r]
            if not regrets:
                continue
            full = all(c is not None for c in cells)
            mean = statistics.fmean(c for c in cells if c is not None)
            if full:
                summary[policy, budget] = mean
            shown = " | ".join("-" if c is None else f"{100 * c:.1f}" for c in cells)
            label = f"stop ({min(stops)}-{max(stops)})" if stops else str(budget)
            print(f"| {policy} | {label} | {shown} | {100 * mean:.1f}{'' if full else '*'} | "
                  f"{100 * statistics.fmean(regrets):.1f} | {' / '.join(epochs)} | "
                  f"{' / '.join(seeds)} |")  # fmt: skip
    if lab:
        labs = " | ".join(f"{100 * lab[d]['lab']:.1f}" if d in lab else "-" for d in DATASETS)
        mean = statistics.fmean(lab[d]["lab"] for d in DATASETS if d in lab)
        print(f"| lab's settings, {LAB_EPOCHS} epochs | - | {labs} | {100 * mean:.1f} | | "
              f"{LAB_EPOCHS} each | 1 |")  # fmt: skip
        names = sorted({n for d in lab.values() for n in d["references"]})
        for name in names:
            refs = [lab.get(d, {}).get("references", {}).get(name) for d in DATASETS]
            shown = " | ".join("-" if v is None else f"{100 * v:.1f}" for v in refs)
            print(f"| reference {name} | - | {shown} | | | - | - |")
    for budget in BUDGETS:
        if ("today", budget) in summary and ("default", budget) in summary:
            gain = summary["default", budget] - summary["today", budget]
            print(f"default vs today at {budget} trials: {100 * gain:+.1f} points (mean of the "
                  "three datasets)")  # fmt: skip
    if args.png:
        write_figure(rows, lab, Path(args.png))


def write_figure(rows: list[dict[str, Any]], lab: dict[str, Any], png: Path) -> None:
    """Test accuracy of the chosen configuration against the epochs spent, one panel per
    dataset, one line per policy through the budgets; the lab's settings and references as
    horizontal lines."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from eegtune.results.images import write_images

    fig = make_subplots(rows=1, cols=len(DATASETS), subplot_titles=DATASETS)
    colours = {"today": "#7f7f7f", "tpe": "#1f77b4", "portfolio": "#2ca02c",
               "folds": "#ff7f0e", "default": "#d62728", "default+stop": "#9467bd"}  # fmt: skip
    for col, dataset in enumerate(DATASETS, 1):
        for policy, colour in colours.items():
            xs, ys = [], []
            for budget in BUDGETS:
                got = [r for r in rows if (r["policy"], r["dataset"], r["budget"]) ==
                       (policy, dataset, budget)]  # fmt: skip
                if got:
                    xs.append(statistics.fmean(r["epochs"] for r in got))
                    ys.append(100 * statistics.fmean(r["test"] for r in got))
            if xs:
                fig.add_trace(go.Scatter(
                    x=xs, y=ys, name=policy, legendgroup=policy, showlegend=col == 1,
                    mode="lines+markers" if policy != "default+stop" else "markers",
                    line={"color": colour, "width": 5 if policy == "default" else 2,
                          "dash": "dot" if policy == "default" else "solid"},
                    marker={"size": 13 if policy == "default" else 8,
                            "symbol": "star" if policy == "default+stop" else "circle"},
                    opacity=0.75 if policy == "default" else 1.0,
                ), row=1, col=col)  # fmt: skip
        if dataset in lab:
            fig.add_hline(y=100 * lab[dataset]["lab"], line_dash="dash", line_color="black",
                          annotation_text="lab's settings, 300 epochs", row=1, col=col)  # fmt: skip
            best_ref = max((v for v in lab[dataset]["references"].values() if v is not None),
                           default=None)  # fmt: skip
            if best_ref is not None:
                fig.add_hline(y=100 * best_ref, line_dash="dot", line_color="#8c564b",
                              annotation_text="best classical reference", row=1, col=col,
                              annotation_position="bottom right")  # fmt: skip
        fig.update_xaxes(title_text="epochs spent by the search", rangemode="tozero", row=1,
                         col=col)  # fmt: skip
    fig.update_yaxes(title_text="test accuracy of the chosen configuration (%)", row=1, col=1)
    fig.update_layout(
        title="Time to quality, EEGNet: searches of 5, 10, 20, 40 trials (mean over search "
        "seeds; default = portfolio, on small with folds)",
        width=1500, height=520, template="plotly_white",
    )  # fmt: skip
    png.parent.mkdir(parents=True, exist_ok=True)
    write_images({png.stem: fig}, png.parent, ["png"])
    print(f"figure: {png}")



if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["pool", "portfolio", "search", "lab", "table"])
    parser.add_argument("--out", default="bench/budget", help="folder of the results")
    parser.add_argument("--epochs", type=int, default=30, help="pool: epochs; search: max epochs")
    parser.add_argument("--configs", type=int, default=32, help="pool: configurations")
    parser.add_argument("--size", type=int, default=4, help="portfolio: configurations")
    parser.add_argument("--policy", default="today,tpe,portfolio,default", help="search: policies")
    parser.add_argument("--seeds", type=int, default=3, help="search: search seeds 0..N-1")
    parser.add_argument("--png", default=None, help="table: write the figure here")
    args = parser.parse_args()
    quiet_optuna()
    configure_process(resolve_device("cpu"))
    phases = {"pool": pool_phase, "portfolio": portfolio_phase, "search": search_phase,
              "lab": lab_phase, "table": table_phase}  # fmt: skip
    phases[args.phase](args)
