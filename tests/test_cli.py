"""The CLI surface: help, data commands, train, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eegtune.cli.app import app
from tests.helpers import BAD_KINDS, assert_one_line_error, damage, invoke, listing, unused_url

runner = CliRunner()


def test_help_lists_commands_without_heavy_imports() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from eegtune.cli.app import app;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "heavy = [m for m in ('torch', 'optuna', 'plotly', 'numpy') if m in sys.modules];"
        "print(r.output); assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for command in ("train", "data", "search", "report", "evaluate", "dashboard"):
        assert command in out.stdout


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "eegtune", "data", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "fetch" in out.stdout and "info" in out.stdout


def test_every_option_has_help() -> None:
    import typer.main

    group = typer.main.get_command(app)

    def walk(command):
        yield command
        for sub in getattr(command, "commands", {}).values():
            yield from walk(sub)

    for command in walk(group):
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"{command.name} --{param.name} has no help text"


def _commands():
    import typer.main

    group = typer.main.get_command(app)
    yield [], group
    for name, command in group.commands.items():
        yield [name], command
        for sub in getattr(command, "commands", {}):
            yield [name, sub], command.commands[sub]


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=lambda p: " ".join(p) or "-")
def test_no_help_page_shows_a_type_for_a_flag(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "<list[" not in result.output  # repeatable choices read as their values
    if path == ["compare"]:
        assert "eegnet|deepconvnet" in result.output and "relu|leaky_relu|elu" in result.output


def test_version() -> None:
    from eegtune import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"eegtune {__version__}\n"


def test_choices_ignore_case_and_a_near_miss_gets_a_did_you_mean(tmp_path: Path) -> None:
    args = ["train", "--model", "EEGNet", "--activation", "ELU", "--dataset", "Synthetic",
            "--epochs", "1", "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "eegnet" in result.output and "elu" in result.output
    wrong = runner.invoke(app, ["search", "--model", "eegnett", "--storage",
                                str(tmp_path / "s.journal")])  # fmt: skip
    assert wrong.exit_code == 2
    text = " ".join(wrong.output.replace("│", " ").split())
    assert (
        "unknown network 'eegnett'; did you mean eegnet? (choose one of: eegnet, deepconvnet)"
        in text
    )
    assert "Value error" not in text and not (tmp_path / "s.journal").exists()
    dataset = runner.invoke(app, ["search", "--model", "eegnet", "--dataset", "synth"])
    assert dataset.exit_code == 2 and "did you mean synthetic?" in dataset.output


def test_train_keeps_its_run_in_a_folder(tmp_path: Path) -> None:
    import csv
    import json

    import torch

    from eegtune.models.networks import build_model

    runs = tmp_path / "runs"
    args = ["train", "--dataset", "synthetic", "--epochs", "3", "--device", "cpu", "--seed", "4",
            "--dropout", "0.3", "--test", "--runs-dir", str(runs)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (folder,) = runs.iterdir()
    assert folder.name.startswith("eegnet-elu-synthetic-")
    assert f"run saved in {folder}" in result.output
    with (folder / "epochs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["params"]["dropout"] == 0.3 and summary["seed"] == 4
    assert summary["status"] == "completed" and summary["epochs_run"] == 3
    assert summary["data"]["dataset"] == "synthetic" and summary["fingerprint"]
    assert summary["split"] == {"val_fraction": 0.2, "split_seed": 0, "train": 864, "val": 216}
    assert set(summary["versions"]) == {"eegtune", "torch", "numpy", "python"}
    best = max(float(r["val_acc"]) for r in rows)
    assert summary["best_val_acc"] == pytest.approx(best) and 0 <= summary["test_acc"] <= 1
    assert f"val accuracy {100 * best:.2f}%" in result.output
    net = build_model("eegnet", "elu", 0.3)
    net.load_state_dict(torch.load(folder / "weights.pt"))  # the final weights, loadable
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and len(list(runs.iterdir())) == 2  # a new folder per run
    elsewhere = tmp_path / "scratch"
    by_env = runner.invoke(app, args[:-2], env={"EEGTUNE_RUNS_DIR": str(elsewhere)})
    assert by_env.exit_code == 0 and len(list(elsewhere.iterdir())) == 1  # $EEGTUNE_RUNS_DIR


def test_data_info_on_lab_files(lab_dir: Path) -> None:
    result = invoke("data", "info", "--data-dir", str(lab_dir))
    assert result.exit_code == 0, result.output
    assert result.output.count("540x750x2") == 4
    assert "no (loads anyway)" in result.output


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_file_is_one_line_exit_2_nothing_written(kind: str, lab_copy: Path) -> None:
    fragment = damage(kind, lab_copy / "S4b_test.npz")
    before = listing(lab_copy)
    for args in (["data", "info"], ["train", "--epochs", "1", "--offline"]):
        result = invoke(*args, "--data-dir", str(lab_copy))
        assert_one_line_error(result, fragment)
        assert "S4b_test.npz" in result.output
    assert listing(lab_copy) == before


def test_train_on_lab_files_offline(lab_dir: Path) -> None:
    result = invoke(
        "train", "--data-dir", str(lab_dir), "--offline", "--epochs", "2", "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    assert "filled" in result.output and "NaN" in result.output
    assert "val accuracy" in result.output and "test accuracy" not in result.output


def test_train_synthetic_reports_val_and_test_only_when_asked() -> None:
    result = invoke(
        "train",
        "--dataset",
        "synthetic",
        "--epochs",
        "2",
        "--model",
        "deepconvnet",
        "--activation",
        "leaky_relu",
        "--batch-size",
        "128",
        "--test",
    )
    assert result.exit_code == 0, result.output
    assert "deepconvnet (leaky_relu, 150,977 parameters)" in result.output
    assert "val accuracy" in result.output and "(best epoch" in result.output
    assert "test accuracy" in result.output


def test_train_missing_data_offline_env(tmp_path: Path) -> None:
    result = invoke("train", "--data-dir", str(tmp_path), env={"EEGTUNE_OFFLINE": "1"})
    assert_one_line_error(result, "offline mode is on")
    assert listing(tmp_path) == []


def test_train_fetches_when_data_missing(tmp_path: Path) -> None:
    url = unused_url()
    result = invoke(
        "train",
        "--data-dir",
        str(tmp_path / "d"),
        env={"EEGTUNE_MIRRORS": url + "/{name}", "EEGTUNE_OFFLINE": "0"},
    )
    assert_one_line_error(result, "could not download S4b_train.npz")
    error = next(line for line in result.output.splitlines() if line.startswith("error:"))
    assert len(error) <= 200 and "--dataset synthetic" in error and "data/README.md" in error
    assert f"    {url}/S4b_train.npz: " in result.output  # the mirrors, indented below
    assert not (tmp_path / "d").exists()


def test_data_fetch_failure_is_one_line(tmp_path: Path, file_server) -> None:
    file_server.routes["/m/S4b_train.npz"] = b"not the real file"
    result = invoke(
        "data",
        "fetch",
        "--data-dir",
        str(tmp_path / "d"),
        env={"EEGTUNE_MIRRORS": file_server.url + "/m/{name}"},
    )
    assert_one_line_error(result, "copy the files by hand (see data/README.md)")
    assert "17 bytes, expected 6484788" in result.output
    assert not (tmp_path / "d").exists()


def test_data_fetch_keeps_present_files(lab_dir: Path) -> None:
    result = invoke(
        "data",
        "fetch",
        "--data-dir",
        str(lab_dir),
        env={"EEGTUNE_MIRRORS": unused_url() + "/{name}"},
    )
    assert result.exit_code == 0 and "all 4 files already present" in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--device", "cuda:7"], "device 'cuda:7'"),
        (["--device", "banana"], "unknown device"),
    ],
)
def test_train_bad_device(args, fragment) -> None:
    import torch

    if torch.cuda.is_available() and "cuda" in args[1]:
        pytest.skip("a GPU is present")
    assert_one_line_error(invoke("train", "--dataset", "synthetic", *args), fragment)


def test_train_bad_option_values_exit_2() -> None:
    result = invoke("train", "--dataset", "synthetic", "--model", "resnet")
    assert result.exit_code == 2 and "resnet" in result.output
    result = invoke("train", "--dataset", "synthetic", "--val-fraction", "0.9")
    assert result.exit_code == 2 and "val-fraction" in result.output


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("oops")
    result = invoke("data", "fetch", "--data-dir", str(not_a_dir))
    assert_one_line_error(result, "is a file, expected a folder")
    assert not_a_dir.read_text() == "oops"


def test_unwritable_output_is_one_line_not_a_traceback(tmp_path: Path, lab_dir: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    from eegtune.search.plan import plan_search
    from eegtune.search.run import run_search

    journal = str(tmp_path / "s.journal")
    run_search(
        plan_search(
            model="eegnet",
            study_name="eegnet",
            trials=1,
            epochs=1,
            storage=journal,
            dataset="synthetic",
            device="cpu",
            pruner="none",
        )
    )
    result = invoke("report", "--storage", journal, "--out", str(blocker / "report"))
    assert_one_line_error(result, f"cannot write to {blocker / 'report'}: Not a directory")
    assert blocker.read_text() == "a file where a folder should be"


def test_data_info_on_an_empty_folder_is_one_error_line(tmp_path: Path) -> None:
    result = invoke("data", "info", "--data-dir", str(tmp_path))
    assert_one_line_error(result, "file not found")
    assert "(and 3 more, see the table)" in result.output
    assert result.output.count("missing") == 4


def test_train_divergence_is_one_line_exit_1(monkeypatch) -> None:
    from eegtune.training import FitResult

    def diverging_fit(*args, **kwargs):
        return FitResult(status="diverged", message="training loss became non-finite (nan)")

    monkeypatch.setattr("eegtune.training.fit", diverging_fit)
    result = invoke("train", "--dataset", "synthetic", "--epochs", "1", "--device", "cpu")
    assert_one_line_error(result, "non-finite (nan); try a lower --lr", code=1)
