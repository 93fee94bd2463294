"""eegtune compare: every cell tuned and tested against the lab's settings, honest statistics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import optuna
import pytest
from typer.testing import CliRunner

from eegtune.cli.app import app
from eegtune.data.synthetic import make_synthetic
from eegtune.errors import SearchError
from eegtune.names import LAB_SETTINGS
from eegtune.results.evaluate import evaluate_study, plan_evaluation
from eegtune.results.statistics import mean_ci, paired_difference, verdict
from eegtune.search.plan import plan_search
from eegtune.search.run import run_search
from eegtune.search.storages import open_storage
from tests.helpers import chromium_dom, chromium_screenshot, serve_synthetic

runner = CliRunner()
CELLS = [(m, a) for m in ("eegnet", "deepconvnet") for a in ("relu", "leaky_relu", "elu")]


@pytest.mark.slow
def test_compare_fills_every_cell_against_the_lab_baseline_and_resumes(tmp_path: Path) -> None:
    storage, out = str(tmp_path / "c.journal"), tmp_path / "report"
    args = ["compare", "--dataset", "synthetic", "--trials", "2", "--epochs", "2",
            "--seeds", "2", "--storage", storage, "--out", str(out), "--image", "png",
            "--models-dir", str(tmp_path / "m"), "--device", "cpu", "--race", "2"]  # fmt: skip
    env = {"EEGTUNE_PROGRESS_INTERVAL": "60", "COLUMNS": "200"}
    first = runner.invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    # 2 epochs are not the lab's 300: the lab's row is its settings cut short, and says so
    assert "note: the lab trains its settings for 300 epochs; here every trial, the baseline " \
        "too, gets at most 2, so the lab's row is its settings cut short" in first.output
    for model, activation in CELLS:
        study = optuna.load_study(
            study_name=f"compare-synthetic-{model}-{activation}", storage=open_storage(storage)
        )
        trial0 = study.trials[0]
        assert trial0.user_attrs["baseline"] is True
        assert trial0.params == {**LAB_SETTINGS, "activation": activation}
        assert trial0.state == optuna.trial.TrialState.COMPLETE  # never pruned
        assert {t.params["activation"] for t in study.trials} == {activation}
        ci = r"[\d.]+% \[[\d.]+, [\d.]+\]\*?"  # a mean and its 95% CI, clipped and marked
        row = rf"│ +{model} │ +{activation} │ +{ci} │ +{ci} │ "
        row += r"+[+-][\d.]+ \[[+-][\d.]+, [+-][\d.]+\] pts │ +50\.0% │ +2 │"  # balanced: 50%
        assert re.search(row, first.output), first.output
    # the classical references: rows of the table, labelled as such, one fit each
    for title in ("CSP + LDA", "tangent space + LR"):
        row = rf"│ +reference │ +{re.escape(title)} │ +{ci} │ +- │ +- │ +50\.0% │ +1 fit │"
        assert re.search(row, first.output), first.output
    # each cell's choice was raced (--race 2; off by default), and says so
    assert first.output.count("won the race of") + first.output.count("only finalist") == 6
    document = json.loads((out / "best_trials.json").read_text())
    assert document["schema_version"] == 6
    references = document["compare"]["references"]
    assert [r["name"] for r in references] == ["csp-lda", "ts-lr"]
    assert all(0 <= r["ci95"][0] <= r["accuracy"] <= r["ci95"][1] <= 1 for r in references)
    cells = document["compare"]["cells"]
    assert [(c["model"], c["activation"]) for c in cells] == CELLS
    for cell in cells:
        assert cell["tuned"]["seeds"] == [0, 1] and len(cell["tuned"]["test_acc"]) == 2
        assert cell["baseline"]["seeds"] == [0, 1] and len(cell["baseline"]["ci95"]) == 2
        expected = np.mean(np.subtract(cell["tuned"]["test_acc"], cell["baseline"]["test_acc"]))
        assert cell["difference"]["mean"] == pytest.approx(expected)
        assert cell["difference"]["seeds"] == 2 and cell["reason"] == ""
    verdicts = document["compare"]["comparisons"]
    assert len(verdicts) == 6 and all(" vs " in v["verdict"] for v in verdicts)
    # 2 seeds: no verdict, in the file and on screen (a paired interval with 1 degree of freedom)
    assert all(v["verdict"].endswith("too few seeds for a verdict (2 given, 3 needed)")
               for v in verdicts)  # fmt: skip
    assert first.output.count("too few seeds for a verdict (2 given, 3 needed)") == 6
    index = (out / "index.html").read_text()
    assert 'id="fig-compare"' in index and '"error_y"' in index.replace(" ", "")
    assert '<tr class="reference"><td>reference</td><td>CSP + LDA</td>' in index
    # The lab's deliverables: one figure and one table per network, not a chart per cell.
    assert re.findall(r'<section id="([\w-]+)">', index)[:2] == ["lab_eegnet", "lab_deepconvnet"]
    assert not re.findall(r'<section id="compare-[\w-]+_activations">', index)
    for model, title in (("eegnet", "EEGNet"), ("deepconvnet", "DeepConvNet")):
        table = index.split(f'<section id="lab_{model}">')[1].split("</section>")[0]
        assert f"<caption>{title}: test accuracy, mean [95% CI]" in table
        for setting in ("tuned by eegtune", "the lab&#x27;s settings"):
            assert re.search(rf"<td>{setting}</td>(<td>[\d.]+% \[[\d.]+, [\d.]+\]\*? \(2\)</td>)"
                             r"{3}</tr>", table), table  # fmt: skip
        assert "test curve was recorded for this figure only" in table
    assert (out / "lab_eegnet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _the_page_in_chromium(out, tmp_path)

    before = {name: len(optuna.load_study(study_name=name, storage=open_storage(storage)).trials)
              for name in optuna.study.get_all_study_names(open_storage(storage))}  # fmt: skip
    again = runner.invoke(app, args, env=env)
    assert again.exit_code == 0, again.output
    after = {name: len(optuna.load_study(study_name=name, storage=open_storage(storage)).trials)
             for name in before}  # fmt: skip
    assert after == before
    assert "seed 0 test accuracy" not in again.output  # nothing was retrained


PROBE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  document.body.setAttribute("data-scroll-width", document.documentElement.scrollWidth);
}, 1500));
</script></body>"""


def _the_page_in_chromium(out: Path, tmp_path: Path) -> None:
    """The compare report as a browser draws it: one figure per network with its six curves
    and its title, the lab table, a chance line, no bare "±", nothing wider than 1280 px."""
    index = (out / "index.html").read_text()
    (out / "probe.html").write_text(index.replace("</body>", PROBE, 1))
    dom, log = chromium_dom((out / "probe.html").as_uri(), size=(1280, 900))
    assert "Uncaught" not in log and "±" not in dom
    width = re.search(r'data-scroll-width="(\d+)"', dom)
    assert width and int(width.group(1)) <= 1280, log[-1500:]
    for model, title in (("eegnet", "EEGNet"), ("deepconvnet", "DeepConvNet")):
        section = dom.split(f'<section id="lab_{model}">')[1].split("</section>")[0]
        legend = set(re.findall(r'class="legendtext"[^>]*data-unformatted="([^"]+)"', section))
        curves = {f"{a} {p}" for a in ("relu", "leaky_relu", "elu") for p in ("train", "test")}
        assert curves <= legend and "chance 50.0%" in legend, legend
        assert re.search(rf'class="gtitle"[^>]*>{title}: train and test accuracy', section)
        assert "<caption>" in section  # the lab's table beside the figure
    chromium_screenshot((out / "index.html").as_uri(), tmp_path / "compare.png", (1280, 2400))
    assert (tmp_path / "compare.png").stat().st_size > 10_000


def test_a_cell_without_completed_trials_states_why(tmp_path: Path, monkeypatch) -> None:
    from eegtune.results.compare import cell_plans, evaluate_cells, search_cell

    (cell,) = cell_plans(
        ["eegnet"], ["elu"], "x", trials=1, epochs=1, storage=str(tmp_path / "s.journal"),
        dataset="synthetic", device="cpu", folds=1,  # a hold-out: the broken fit() is called
    )  # fmt: skip

    def broken_fit(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr("eegtune.training.fit", broken_fit)
    data = make_synthetic(n_train=120, n_test=8)
    storage = open_storage(cell.storage)
    with pytest.raises(SearchError, match="5 trials failed in a row"):
        search_cell(cell, baseline=True, data_set=data, storage=storage)
    (result,) = evaluate_cells([cell], seeds=1, baseline=True, data_set=data, storage=storage)
    assert result.tuned is None and "no completed trial (" in result.reason
    assert "fail" in result.reason and "search longer" in result.reason


def test_compare_opens_its_storage_once_and_closes_it(tmp_path: Path, monkeypatch) -> None:
    # two cells searched, evaluated and reported: before, each cell opened the storage 3 times
    import eegtune.search.storages as storages

    opened, closed = [], []
    real_open, real_close = storages.open_storage, storages.close_storage
    monkeypatch.setattr(
        storages, "open_storage", lambda *a, **k: opened.append(a) or real_open(*a, **k)
    )
    monkeypatch.setattr(storages, "close_storage", lambda s: closed.append(s) or real_close(s))
    serve_synthetic(monkeypatch, make_synthetic(n_train=120, n_test=40, seed=0))
    result = CliRunner().invoke(
        app,
        ["compare", "--dataset", "synthetic", "--model", "eegnet", "--activation", "elu",
         "--activation", "relu", "--trials", "1", "--epochs", "1", "--seeds", "1",
         "--storage", str(tmp_path / "c.journal"), "--out", str(tmp_path / "out"),
         "--models-dir", str(tmp_path / "models")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(opened) == 1, opened
    assert len(closed) == 1
    assert (tmp_path / "out" / "index.html").is_file()


def test_per_subject_accuracy_shows_a_subject_that_differs_on_purpose(tmp_path: Path) -> None:
    """Subject "flipped" has its test labels inverted: whatever the network learned, it scores
    1 - accuracy on that subject, so the two subjects must come out far apart."""
    data = make_synthetic(n_train=600, n_test=400, seed=3)
    half = len(data.y_test) // 2
    data.y_test[half:] = 1 - data.y_test[half:]
    data.test_subjects = np.array(["plain"] * half + ["flipped"] * (len(data.y_test) - half))
    storage = str(tmp_path / "subj.journal")
    space = tmp_path / "lab.toml"
    space.write_text(
        '[activation]\nchoices = ["elu"]\n[lr]\nlow = 0.004\nhigh = 0.006\n'
        "[batch_size]\nchoices = [64]\n[dropout]\nlow = 0.2\nhigh = 0.3\n"
        "[weight_decay]\nlow = 1e-4\nhigh = 2e-4\n"
    )
    run_search(
        plan_search(model="eegnet", study_name="eegnet", trials=1, epochs=15, storage=storage,
                    space=str(space), dataset="synthetic", device="cpu", pruner="none"),
        data_set=data,
    )  # fmt: skip
    opened = open_storage(storage)
    plan = plan_evaluation(opened, "eegnet", seeds=1, models_dir=tmp_path / "m")
    (result,) = evaluate_study(plan, data, storage=opened)
    plain, flipped = result.per_subject["plain"][0], result.per_subject["flipped"][0]
    assert plain - flipped > 0.15, (plain, flipped)
    assert result.test_acc[0] == pytest.approx((plain + flipped) / 2, abs=0.01)


def test_confidence_intervals_and_paired_verdicts() -> None:
    ci = mean_ci([0.80, 0.82, 0.84])
    assert ci.mean == pytest.approx(0.82)
    assert ci.high - ci.mean == pytest.approx(4.303 * 0.02 / 3**0.5)  # t(2) = 4.303
    assert mean_ci([0.5]).low is None
    better = paired_difference({0: 0.85, 1: 0.86, 2: 0.84}, {0: 0.80, 1: 0.82, 2: 0.81})
    assert better is not None and better.low > 0
    assert verdict("elu", "relu", better).startswith("elu vs relu: +4.0 points, 95% CI [")
    noisy = paired_difference({0: 0.85, 1: 0.75, 2: 0.9}, {0: 0.80, 1: 0.80, 2: 0.8})
    assert "no clear difference" in verdict("elu", "relu", noisy)
    agreeing = paired_difference({0: 0.85, 1: 0.86}, {0: 0.80, 1: 0.81})  # 2 seeds agree
    assert verdict("elu", "relu", agreeing) == (
        "elu vs relu: +5.0 points, too few seeds for a verdict (2 given, 3 needed)"
    )
    assert paired_difference({0: 0.8}, {1: 0.8}) is None
