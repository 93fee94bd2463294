"""The lab's deliverables: its comparison figure and table per network, one meaning per symbol,
figures saved as PNG and SVG, and report folders that keep only what belongs to them."""

from __future__ import annotations

import statistics
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from eegtune.cli.app import app
from eegtune.results.charts import compare_figure, lab_figure
from eegtune.results.compare import Cell
from eegtune.results.evaluate import Evaluation, evaluate_study, plan_evaluation
from eegtune.results.lab import lab_networks, mean_curve
from eegtune.results.report import MANIFEST
from eegtune.results.statistics import Interval, mean_ci
from eegtune.results.text import CLIPPED_NOTE, ci_text, interval_text, percent_pm
from eegtune.search.run import run_search
from eegtune.search.storages import open_storage
from eegtune.search.study import load_evaluation, load_study
from eegtune.training import train_configuration
from tests.helpers import search_plan

runner = CliRunner()
PARAMS = {"activation": "elu", "dropout": 0.25, "lr": 1e-3, "batch_size": 32, "weight_decay": 0.0}


def evaluation(activation: str, label: str, curves: list[dict[str, list[float]]]) -> Evaluation:
    finals = [c["test_acc"][-1] for c in curves]
    return Evaluation(
        label, 3, {**PARAMS, "activation": activation}, len(curves[0]["test_acc"]),
        list(range(len(curves))), finals, chance=0.5, curves=curves,
    )  # fmt: skip


def seeds_of(train: list[list[float]], test: list[list[float]]) -> list[dict[str, list[float]]]:
    return [{"train_acc": a, "test_acc": b} for a, b in zip(train, test, strict=True)]


# --------------------------------------------------------------------------- the figure


def test_lab_figure_draws_each_activation_train_dashed_test_solid_mean_and_band() -> None:
    train = [[0.6, 0.8], [0.7, 0.9], [0.65, 0.85]]
    relu = evaluation("relu", "tuned", seeds_of(train, [[0.55, 0.7], [0.6, 0.75], [0.5, 0.99]]))
    elu = evaluation("elu", "tuned", seeds_of([[0.5, 0.6]], [[0.5, 0.55]]))  # one seed: no band
    network = lab_networks([types.SimpleNamespace(
        model="eegnet", activations=["relu", "leaky_relu", "elu"],
        evaluation={"relu": relu.to_dict(), "best": elu.to_dict()},
    )])[0]  # fmt: skip
    fig = lab_figure(network)
    lines = {t.name: t for t in fig.data if t.name}
    assert set(lines) == {"relu train", "relu test", "elu train", "elu test", "chance 50.0%"}
    assert lines["relu train"].line.dash == "dash" and lines["relu test"].line.dash == "solid"
    assert lines["relu train"].line.color == lines["relu test"].line.color
    assert lines["relu train"].line.color != lines["elu train"].line.color
    expected = [100 * statistics.fmean(v) for v in ([0.55, 0.6, 0.5], [0.7, 0.75, 0.99])]
    assert list(lines["relu test"].y) == pytest.approx(expected)
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2  # relu's train and test; elu has one seed
    ci = mean_ci([0.7, 0.75, 0.99])
    assert max(bands[1].y) == pytest.approx(100 * min(1.0, ci.high))  # clipped at 100%
    assert list(fig.layout.yaxis.range) == [0, 100]


def test_lab_networks_take_tuned_and_lab_settings_from_what_was_stored() -> None:
    curves = seeds_of([[0.6]], [[0.6]])
    tuned = evaluation("relu", "tuned", curves).to_dict()
    lab = evaluation("relu", "baseline", curves).to_dict()
    cells = [
        types.SimpleNamespace(model="deepconvnet", activations=["relu"],
                              evaluation={"tuned": tuned, "baseline": lab}),
        types.SimpleNamespace(model="eegnet", activations=["relu"], evaluation={}),
    ]  # fmt: skip
    (network,) = lab_networks(cells)  # eegnet was never evaluated: no empty network
    assert network.model == "deepconvnet" and list(network.results) == ["tuned", "lab"]
    assert network.get("lab", "relu").label == "baseline"
    assert network.get("tuned", "elu") is None


def test_the_test_curve_is_only_recorded_it_changes_no_weight(tiny_data) -> None:
    shape = tiny_data.model_kwargs
    x, y = tiny_data.x_train, tiny_data.y_train
    plain, _ = train_configuration("eegnet", PARAMS, x, y, shape=shape, epochs=2, seed=3)
    watched, result = train_configuration(
        "eegnet", PARAMS, x, y, tiny_data.x_test, tiny_data.y_test, shape=shape, epochs=2, seed=3
    )
    assert all(r.val_acc is not None for r in result.history)
    for key, value in plain.state_dict().items():
        assert torch.equal(value, watched.state_dict()[key]), key


def test_evaluate_keeps_each_seeds_curves_and_tests_the_last_epoch(tmp_path, tiny_data) -> None:
    storage_url = str(tmp_path / "c.journal")
    run_search(search_plan(storage_url, trials=1, epochs=3), data_set=tiny_data)
    storage = open_storage(storage_url)
    plan = plan_evaluation(storage, "eegnet", seeds=2, models_dir=tmp_path / "m")
    (result,) = evaluate_study(plan, tiny_data, storage=storage)
    assert len(result.curves) == 2
    for curve, final in zip(result.curves, result.test_acc, strict=True):
        assert len(curve["train_acc"]) == len(curve["test_acc"]) == result.epochs
        assert curve["test_acc"][-1] == pytest.approx(final)  # the reported value: last epoch
    stored = load_evaluation(storage, load_study(storage, "eegnet"))["best"]
    assert Evaluation.from_dict(stored).curves == result.curves
    assert mean_curve(result, "test_acc").mean[-1] == pytest.approx(result.mean)


# --------------------------------------------------------------------------- one meaning


def test_intervals_are_bracketed_clipped_and_marked_and_sd_says_sd() -> None:
    inside = Interval(0.8, 0.75, 0.85, 5)
    past = Interval(0.597, -0.438, 1.632, 2)
    assert interval_text(inside) == "80.0% [75.0, 85.0]"
    assert interval_text(past) == "59.7% [0.0, 100.0]*"
    assert ci_text(past) == "[0.00, 100.00]*" and "clipped" in CLIPPED_NOTE
    assert interval_text(Interval(0.02, -0.01, 0.05, 3), signed=True) == "+2.0 [-1.0, +5.0]"
    assert interval_text(Interval(0.8, None, None, 1)) == "80.0%"  # one seed: no interval
    assert percent_pm(0.7972, 0.0327) == "79.72% (sd 3.27)"


def test_the_compare_bars_start_at_zero_draw_chance_and_mark_a_clipped_whisker() -> None:
    wide = evaluation("relu", "tuned", seeds_of([[0.5], [0.5]], [[0.45], [0.97]]))
    narrow = evaluation("relu", "baseline", seeds_of([[0.5], [0.5]], [[0.6], [0.62]]))
    fig = compare_figure([Cell("eegnet", "relu", "c", tuned=wide, baseline=narrow)])
    assert list(fig.layout.yaxis.range) == [0, 100]
    tuned, lab = (t for t in fig.data if t.type == "bar")
    assert tuned.name == "tuned settings" and lab.name == "the lab's settings"
    assert tuned.text[0].endswith("*") and not lab.text[0].endswith("*")
    assert tuned.y[0] + tuned.error_y.array[0] == pytest.approx(100.0)  # clipped at 100%
    assert tuned.y[0] - tuned.error_y.arrayminus[0] == pytest.approx(0.0)
    assert any(s.y0 == 50.0 for s in fig.layout.shapes)  # the chance line
    assert "clipped" in fig.layout.annotations[0].text


# --------------------------------------------------------------------------- report files


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> str:
    from eegtune.data.synthetic import make_synthetic

    data = make_synthetic(n_train=160, n_test=20, seed=0)
    storage_url = str(tmp_path_factory.mktemp("lab") / "e.journal")
    run_search(search_plan(storage_url, trials=2, epochs=2), data_set=data)
    storage = open_storage(storage_url)
    plan = plan_evaluation(storage, "eegnet", seeds=2, models_dir=tmp_path_factory.mktemp("m"))
    evaluate_study(plan, data, storage=storage)
    return storage_url


def test_report_saves_every_figure_as_png_and_svg_with_its_title(evaluated, tmp_path) -> None:
    out = tmp_path / "rep"
    result = runner.invoke(app, ["report", "--storage", evaluated, "--out", str(out),
                                 "--image", "png", "--image", "SVG"])  # fmt: skip
    assert result.exit_code == 0, result.output
    pages = sorted(p.stem for p in out.glob("*.html") if p.name != "index.html")
    assert "lab_eegnet" in pages
    for stem in pages:
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (out / f"{stem}.svg").read_text()
        assert "<svg" in svg[:300]
    assert "EEGNet: train and test accuracy per epoch" in (out / "lab_eegnet.svg").read_text()
    assert not [p for p in out.iterdir() if p.name.startswith(".images.")]


def test_missing_exporter_is_one_line_before_anything_is_written(
    evaluated, tmp_path, monkeypatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "kaleido" else real(name, *a))  # fmt: skip
    out = tmp_path / "rep"
    result = runner.invoke(app, ["report", "--storage", evaluated, "--out", str(out),
                                 "--image", "png"])  # fmt: skip
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: PNG and SVG export needs kaleido: pip install 'eegtune[images]'"
    )
    assert not out.exists()
    bad = runner.invoke(app, ["report", "--storage", evaluated, "--image", "jpeg"])
    assert bad.exit_code == 2 and "unknown image format 'jpeg'; use png or svg" in bad.output


def test_a_missing_browser_is_one_line_and_leaves_no_image(evaluated, tmp_path, monkeypatch):
    import plotly.io as pio

    class ChromeNotFoundError(RuntimeError):
        pass

    def no_browser(*args, **kwargs):
        raise ChromeNotFoundError("Kaleido requires Chrome to be installed.")

    monkeypatch.setattr(pio, "write_images", no_browser)
    out = tmp_path / "rep"
    result = runner.invoke(app, ["report", "--storage", evaluated, "--out", str(out),
                                 "--image", "svg"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "found no Chrome or Chromium: install one" in result.output
    assert "Traceback" not in result.output
    assert not list(out.glob("*.svg")) and not list(out.glob(".images.*"))


def _dropping(real, drops: dict[str, int]):
    """pio.write_images as kaleido behaves when its browser times out on a busy machine: the
    render of each name in ``drops`` fails that many times, without an exception, no file."""

    def write_images(figs, paths, **kwargs):
        keep = []
        for i, path in enumerate(paths):
            if drops.get(Path(path).name, 0) > 0:
                drops[Path(path).name] -= 1
            else:
                keep.append(i)
        per_job = {k: [v[i] for i in keep] if isinstance(v, list) else v
                   for k, v in kwargs.items()}  # fmt: skip
        real([figs[i] for i in keep], [paths[i] for i in keep], **per_job)

    return write_images


@pytest.mark.parametrize("times", [1, 2])
def test_an_image_kaleido_silently_dropped_is_drawn_again_then_refused(
    evaluated, tmp_path, monkeypatch, times
):
    import plotly.io as pio

    drops = {"lab_eegnet.svg": times}
    monkeypatch.setattr(pio, "write_images", _dropping(pio.write_images, drops))
    out = tmp_path / "rep"
    result = runner.invoke(app, ["report", "--storage", evaluated, "--out", str(out),
                                 "--image", "svg"])  # fmt: skip
    assert drops == {"lab_eegnet.svg": 0}  # dropped each time it was asked for
    assert "Traceback" not in result.output
    if times == 1:  # drawn again on the retry
        assert result.exit_code == 0, result.output
        assert "<svg" in (out / "lab_eegnet.svg").read_text()[:300]
        return
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "PNG/SVG export drew no lab_eegnet.svg (twice" in errors[0]
    assert not list(out.glob("*.svg")) and not list(out.glob(".images.*"))


def test_a_report_removes_the_pages_it_wrote_before_and_nothing_else(evaluated, tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "notes.html").write_text("mine")
    (out / "demo_old.html").write_text("an earlier report's page")
    (out / MANIFEST).write_text('{"files": ["demo_old.html", "../outside.html"]}')
    (tmp_path / "outside.html").write_text("not inside the report folder")
    result = runner.invoke(app, ["report", "--storage", evaluated, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "demo_old.html").exists()  # listed by the last report, not written now
    assert (out / "notes.html").read_text() == "mine"  # never written by eegtune: kept
    assert (tmp_path / "outside.html").exists()
    first = sorted(p.name for p in out.iterdir())
    again = runner.invoke(app, ["report", "--storage", evaluated, "--out", str(out)])
    assert again.exit_code == 0 and sorted(p.name for p in out.iterdir()) == first
    assert np.all([(out / n).exists() for n in ("index.html", "lab_eegnet.html", MANIFEST)])


def test_the_reports_numbers_are_attached_to_the_study_once_per_content(evaluated, tmp_path):
    import optuna.artifacts

    def reports() -> list[str]:
        storage = open_storage(evaluated)
        study = load_study(storage, "eegnet")
        metas = optuna.artifacts.get_all_artifact_meta(study, storage=storage)
        return sorted(m.filename for m in metas if m.filename.endswith("-report.json"))

    before = reports()
    for out in ("one", "two"):  # the same studies twice: the same numbers, attached once
        result = runner.invoke(
            app, ["report", "--storage", evaluated, "--out", str(tmp_path / out)]
        )
        assert result.exit_code == 0, result.output
    assert reports() == sorted({*before, "eegnet-report.json"}) and len(reports()) == 1
    store = Path(evaluated).parent / "artifacts"
    attached = [p.read_bytes() for p in store.iterdir()]
    assert (tmp_path / "one" / "best_trials.json").read_bytes() in attached
