"""report and evaluate: tables, CSV/JSON export, figures, offline HTML in Chromium."""

from __future__ import annotations

import csv
import json
import re

import optuna
import pytest
import torch
from optuna.trial import TrialState
from typer.testing import CliRunner

from eegtune.cli.app import app
from eegtune.data.synthetic import make_synthetic
from eegtune.models.networks import build_model
from eegtune.results.charts import MIN_TRIALS_FOR_IMPORTANCE
from eegtune.results.collect import collect
from eegtune.results.evaluate import evaluate_study, plan_evaluation
from eegtune.results.report import COLUMNS, SCHEMA_VERSION, build_figures
from eegtune.search.plan import plan_search
from eegtune.search.run import run_search
from eegtune.search.storages import open_storage
from eegtune.search.study import load_evaluation
from tests.helpers import chromium_dom, chromium_screenshot, listing, serve_synthetic

runner = CliRunner()


def report_data():
    """The data the report studies are made on (a study refuses other data)."""
    return make_synthetic(n_train=160, n_test=40, seed=0)


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory) -> str:
    """A journal with an eegnet and a deepconvnet study (random sampler: mixed activations)."""
    storage = str(tmp_path_factory.mktemp("rep") / "studies.journal")
    data = report_data()
    for model, trials in (("eegnet", 6), ("deepconvnet", 4)):
        run_search(
            plan_search(
                model=model,
                study_name=model,
                trials=trials,
                epochs=3,
                storage=storage,
                dataset="synthetic",
                device="cpu",
                pruner="median",
                sampler="random",
                seed=1,
            ),
            data_set=data,
        )
    return storage


def complete_trials(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    return sorted(done, key=lambda t: (-t.value, t.number))


def test_report_exports_csv_and_json(two_studies, tmp_path) -> None:
    out = tmp_path / "report"
    result = runner.invoke(
        app, ["report", "--storage", two_studies, "--out", str(out), "--top", "50"]
    )
    assert result.exit_code == 0, result.output
    assert "best accuracy per network and activation" in result.output
    with (out / "best_trials.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS
    for name in ("eegnet", "deepconvnet"):
        expected = complete_trials(two_studies, name)
        got = [r for r in rows if r["study"] == name]
        assert [int(r["trial"]) for r in got] == [t.number for t in expected]
        assert [float(r["value"]) for r in got] == pytest.approx([t.value for t in expected])
        assert [r["activation"] for r in got] == [t.params["activation"] for t in expected]
    document = json.loads((out / "best_trials.json").read_text())
    assert document["schema_version"] == SCHEMA_VERSION and document["columns"] == list(COLUMNS)
    assert {s["study"] for s in document["studies"]} == {"eegnet", "deepconvnet"}
    for study in document["studies"]:
        assert all(set(row) == {*COLUMNS, "curves"} for row in study["best_trials"])
        trials = {t.number: t for t in complete_trials(two_studies, study["study"])}
        for row in study["best_trials"]:  # the learning curves of every exported trial
            history = trials[row["trial"]].user_attrs["history"]
            assert row["curves"]["val_acc"] == history["val_acc"]
            assert len(row["curves"]["train_acc"]) == row["epochs_trained"]
        assert sum(study["states"].values()) >= 4
    assert len(document["headline"]) == 6


def test_report_top_limits_rows(two_studies, tmp_path) -> None:
    out = tmp_path / "r"
    assert (
        runner.invoke(
            app,
            [
                "report",
                "--storage",
                two_studies,
                "--out",
                str(out),
                "--top",
                "1",
                "--study",
                "eegnet",
            ],
        ).exit_code
        == 0
    )
    rows = list(csv.DictReader((out / "best_trials.csv").open()))
    assert (
        len(rows) == 1 and int(rows[0]["trial"]) == complete_trials(two_studies, "eegnet")[0].number
    )


def test_figures_have_the_traces_they_should(two_studies) -> None:
    reports = collect(open_storage(two_studies, create=False))
    figures = build_figures(reports)
    for name in ("eegnet", "deepconvnet"):
        for kind in ("history", "parallel", "slice", "intermediate", "activations"):
            assert f"{name}_{kind}" in figures
        report = next(r for r in reports if r.name == name)
        activations = {t.params["activation"] for t in report.complete}
        comparison = figures[f"{name}_activations"]
        assert sorted(t.name for t in comparison.data) == sorted(
            f"{a} {part}" for a in activations for part in ("train", "val")
        )
        assert all(len(t.y) == len(t.x) > 0 for t in comparison.data)
        finished = [
            t for t in report.study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        ]
        assert len(figures[f"{name}_intermediate"].data) == len(finished)
        importances = figures[f"{name}_importances"]
        if len(report.complete) >= MIN_TRIALS_FOR_IMPORTANCE:
            assert len(importances.data) >= 1
        else:  # too few trials: the chart says so instead of ranking noise
            assert not importances.data
            (note,) = importances.layout.annotations
            assert f"{len(report.complete)} completed trial(s)" in note.text
            assert f"at least {MIN_TRIALS_FOR_IMPORTANCE}" in note.text
    box = figures["activation_box"]
    assert len(box.data) == 2 and all(t.type == "box" for t in box.data)
    side = figures["networks_side_by_side"]
    assert {t.xaxis for t in side.data} == {"x", "x2"}


def test_html_is_offline_and_index_renders_in_chromium(two_studies, tmp_path) -> None:
    out = tmp_path / "html"
    assert (
        runner.invoke(app, ["report", "--storage", two_studies, "--out", str(out)]).exit_code == 0
    )
    pages = sorted(out.glob("*.html"))
    assert (out / "plotly.min.js").stat().st_size > 1_000_000
    for page in pages:
        text = page.read_text()
        assert "cdn.plot.ly" not in text and 'src="plotly.min.js"' in text
    dom, log = chromium_dom((out / "index.html").as_uri())
    n_figures = len(pages) - 1
    assert dom.count('class="main-svg"') >= n_figures, log[-2000:]
    assert "Uncaught" not in log


def test_report_with_nothing_to_show(tmp_path) -> None:
    empty = tmp_path / "empty.journal"
    open_storage(str(empty))
    result = runner.invoke(app, ["report", "--storage", str(empty), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no studies" in result.output
    study = optuna.create_study(study_name="failing", storage=open_storage(str(empty)))
    study.tell(study.ask(), state=TrialState.FAIL)
    result = runner.invoke(app, ["report", "--storage", str(empty), "--out", str(tmp_path / "o")])
    assert (
        result.exit_code == 2
        and "no completed trials" in result.output
        and "1 fail" in result.output
    )
    missing = runner.invoke(app, ["report", "--storage", str(tmp_path / "nope.journal")])
    assert missing.exit_code == 2 and "journal file not found" in missing.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "nope.journal").exists()


def test_evaluate_stores_per_seed_test_accuracy_that_report_shows(
    two_studies, tmp_path, monkeypatch
) -> None:
    serve_synthetic(monkeypatch, report_data())
    models_dir = tmp_path / "models"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--storage",
            two_studies,
            "--study",
            "eegnet",
            "--seeds",
            "2",
            "--models-dir",
            str(models_dir),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "mean (sd)" in result.output and "±" not in result.output
    study = optuna.load_study(study_name="eegnet", storage=open_storage(two_studies))
    best = load_evaluation(open_storage(two_studies), study)["best"]
    assert best["seeds"] == [0, 1] and len(best["test_acc"]) == 2
    readable = study.user_attrs["evaluation best"]  # what the dashboard shows
    assert readable.startswith(
        f"test accuracy {100 * best['mean']:.2f}% (sd {100 * best['std']:.2f}) over 2 seed(s)"
    )
    assert readable.endswith(f"over 2 seed(s); trial {best['trial']}, {best['epochs']} epochs")
    assert best["trial"] == complete_trials(two_studies, "eegnet")[0].number
    config = json.loads((models_dir / "eegnet" / "best" / "config.json").read_text())
    assert config["params"] == best["params"]
    model = build_model("eegnet", best["params"]["activation"], best["params"]["dropout"])
    model.load_state_dict(torch.load(models_dir / "eegnet" / "best" / "seed1.pt"))
    report = runner.invoke(
        app,
        ["report", "--storage", two_studies, "--study", "eegnet", "--out", str(tmp_path / "rep")],
    )
    shown = f"{100 * best['mean']:.2f}% (sd {100 * best['std']:.2f})"
    assert report.exit_code == 0 and shown in report.output


def test_evaluate_per_activation(two_studies, tmp_path) -> None:
    data = report_data()
    opened = open_storage(two_studies)
    plan = plan_evaluation(
        opened, "deepconvnet", seeds=1, per_activation=True, models_dir=tmp_path / "m"
    )
    results = evaluate_study(plan, data, storage=opened)
    activations = {t.params["activation"] for t in complete_trials(two_studies, "deepconvnet")}
    assert {r.label for r in results} == activations
    assert all(len(r.test_acc) == 1 and 0 <= r.test_acc[0] <= 1 for r in results)


def test_evaluate_without_completed_trials(tmp_path) -> None:
    storage = str(tmp_path / "e.journal")
    study = optuna.create_study(study_name="x", storage=open_storage(storage))
    study.set_user_attr("model", "eegnet")
    result = runner.invoke(app, ["evaluate", "--storage", storage, "--study", "x", "--seeds", "1"])
    assert result.exit_code == 2 and "no completed trial" in result.output
    assert listing(tmp_path) == ["e.journal"]


def test_evaluate_refuses_another_dataset(two_studies) -> None:
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--storage",
            two_studies,
            "--study",
            "eegnet",
            "--dataset",
            "bci-iiib",
            "--offline",
        ],
    )
    assert result.exit_code == 2
    assert "was searched on synthetic" in result.output


PROBE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  document.body.setAttribute("data-scroll-width", document.documentElement.scrollWidth);
}, 1500));
</script></body>"""


def test_index_page_reads_well_at_1280_px(two_studies, tmp_path) -> None:
    """The page a lab hands in: fits 1280 px, no script errors, human headings, percent axes,
    every chart captioned, the full headline table; a screenshot is kept for people to see."""
    out = tmp_path / "page"
    result = runner.invoke(app, ["report", "--storage", two_studies, "--out", str(out)])
    assert result.exit_code == 0, result.output
    index = (out / "index.html").read_text()
    (out / "probe.html").write_text(index.replace("</body>", PROBE, 1))
    dom, log = chromium_dom((out / "probe.html").as_uri(), size=(1280, 900))
    width = re.search(r'data-scroll-width="(\d+)"', dom)
    assert width and int(width.group(1)) <= 1280, (width and width.group(1), log[-1500:])
    assert "Uncaught" not in log and "ReferenceError" not in log
    headings = re.findall(r"<h2>(.*?)</h2>", dom)
    assert "Best accuracy per network and activation" in headings
    assert "EEGNet (eegnet): search history" in headings
    assert not [h for h in headings if re.fullmatch(r"[\w-]+_\w+", h)]  # no file stems
    assert dom.count("<figcaption>") == len(re.findall(r'<section id="', dom)) >= 8
    y_titles = re.findall(r'class="g-ytitle".*?>([^<]+)</text>', dom)
    accuracy = [t for t in y_titles if "accuracy" in t]
    assert accuracy and all("(%)" in t for t in accuracy), y_titles
    assert "Objective Value" not in " ".join(y_titles)
    for column in ("trial", "seeds", "test acc (mean, sd)"):
        assert f"<th>{column}</th>" in index
    assert "±" not in index  # brackets are 95% CIs, "sd" a standard deviation: one meaning each
    assert "How this was obtained" in index and "torch " in index
    shot = tmp_path / "index-1280.png"
    chromium_screenshot((out / "index.html").as_uri(), shot, (1280, 900))
    assert shot.stat().st_size > 10_000
    print(f"screenshot of the report page: {shot}")


def test_a_cell_without_completed_trials_is_shown_and_explained(tmp_path) -> None:
    storage = str(tmp_path / "one.journal")
    space = tmp_path / "elu.toml"
    space.write_text('[activation]\nchoices = ["elu"]\n')
    run_search(
        plan_search(model="eegnet", study_name="eegnet", trials=1, epochs=1, storage=storage,
                    space=str(space), dataset="synthetic", device="cpu"),
        data_set=make_synthetic(n_train=120, n_test=8),
    )  # fmt: skip
    reports = collect(open_storage(storage))
    box = build_figures(reports)["activation_box"]
    note = " ".join(a.text for a in box.layout.annotations)
    assert "no completed relu trial" in note and "no completed leaky_relu trial" in note
    assert list(box.layout.xaxis.categoryarray) == ["relu", "leaky_relu", "elu"]
    out = tmp_path / "out"
    assert runner.invoke(app, ["report", "--storage", storage, "--out", str(out)]).exit_code == 0
    assert "no completed relu trial" in (out / "index.html").read_text()


def test_evaluations_stored_in_the_older_layout_still_report(tmp_path) -> None:
    storage = open_storage(str(tmp_path / "old.journal"))
    study = optuna.create_study(study_name="old", storage=storage, direction="maximize")
    full = {"mean": 0.8, "std": 0.01, "test_acc": [0.79, 0.81], "trial": 0, "epochs": 3}
    study.set_user_attr("evaluation", {"best": full})  # eegtune before the readable lines
    assert load_evaluation(storage, study) == {"best": full}
