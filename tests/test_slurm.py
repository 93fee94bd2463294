"""eegtune on a real scheduler: a single-node SLURM (slurmctld, slurmd, munge) started from a
generated slurm.conf, a job array of `eegtune search` tasks on one journal file, and scancel.

`.ci/run` installs Debian's slurm-wlm and munge; elsewhere the tests are skipped with the
reason when those programs are missing, never in CI.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.helpers import count, finished, free_port, trials_of, wait_for

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "scontrol")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> dict[str, str]:
    """A one-node SLURM cluster of its own (ports, state, munge socket in a temporary folder);
    the environment that makes sbatch, squeue and scancel talk to it."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)"
        if os.environ.get("CI"):
            pytest.fail(f"SLURM is needed in CI: {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slurm")
    for folder in ("state", "spool"):
        (root / folder).mkdir()
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    sock = root / "munge.sock"
    host, user = socket.gethostname(), getpass.getuser()
    ctld_port, d_port = free_port(), free_port()
    (root / "slurm.conf").write_text(
        f"""ClusterName=eegtune
SlurmctldHost={host}
SlurmUser={user}
SlurmdUser={user}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=10
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
NodeName={host} CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""
    )
    env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
    subprocess.run(
        ["munged", "--force", f"--socket={sock}", f"--key-file={key}",
         f"--log-file={root}/munged.log", f"--pid-file={root}/munged.pid",
         f"--seed-file={root}/munged.seed"],
        check=True, env=env,
    )  # fmt: skip
    subprocess.run(["slurmctld"], check=True, env=env)
    subprocess.run(["slurmd"], check=True, env=env)

    def idle() -> bool:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env)
        return out.stdout.strip() == "idle"

    try:
        wait_for(idle, 60, "the SLURM node coming up")
        yield {**env, "EEGTUNE_SLURM_ROOT": str(root)}
    finally:
        subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True)
        subprocess.run(["munged", "--stop", f"--socket={sock}"], env=env, capture_output=True)


def _array(env: dict[str, str], journal: str, tasks: int, epochs: int, name: str) -> str:
    """Submit a job array of `eegtune search` tasks on one journal; return its job id."""
    root = Path(env["EEGTUNE_SLURM_ROOT"])
    script = root / f"{name}.sh"
    script.write_text(
        f"""#!/bin/bash
#SBATCH --array=0-{tasks - 1}
#SBATCH --cpus-per-task=1
#SBATCH --chdir={ROOT}
#SBATCH --output={root}/{name}_%a.out
exec {sys.executable} -m eegtune search --model eegnet --dataset synthetic --study eegnet \\
    --trials 4 --epochs {epochs} --device cpu --storage {journal}
"""
    )
    out = subprocess.run(
        ["sbatch", "--parsable", str(script)], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip().split(";")[0]


def _queued(env: dict[str, str], job: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True, env=env)
    return bool(out.stdout.strip())


def test_a_job_array_of_searches_finishes_the_study_with_distinct_trials(slurm, tmp_path):
    journal = str(tmp_path / "array.journal")
    job = _array(slurm, journal, tasks=3, epochs=1, name="short")
    wait_for(lambda: not _queued(slurm, job), 300, f"job array {job} finishing")
    trials = trials_of(journal, "eegnet")
    assert finished(trials) == 4 and count(trials, TrialState.RUNNING) == 0
    done = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(done)) == len(done)  # no configuration trained twice
    root = Path(slurm["EEGTUNE_SLURM_ROOT"])
    for task in range(3):
        log = (root / f"short_{task}.out").read_text()
        assert "done: 4/4 finished" in log and "Traceback" not in log


def test_scancel_fails_the_running_trials_and_a_resubmission_finishes(slurm, tmp_path):
    journal = str(tmp_path / "cancel.journal")
    job = _array(slurm, journal, tasks=2, epochs=300, name="long")

    def training() -> bool:
        try:
            running = [t for t in trials_of(journal, "eegnet") if t.state == TrialState.RUNNING]
        except Exception:  # the journal or the study is not written yet
            return False
        return len(running) == 2 and all(t.intermediate_values for t in running)

    wait_for(training, 180, "both array tasks training")
    subprocess.run(["scancel", job], check=True, env=slurm)
    wait_for(lambda: not _queued(slurm, job), 120, f"job array {job} ending after scancel")
    trials = trials_of(journal, "eegnet")
    assert count(trials, TrialState.RUNNING) == 0
    cancelled = [t for t in trials if t.state == TrialState.FAIL]
    assert len(cancelled) == 2
    assert all(t.user_attrs["fail_reason"] == "interrupted (SIGTERM)" for t in cancelled)
    log = (Path(slurm["EEGTUNE_SLURM_ROOT"]) / "long_0.out").read_text()
    assert "run the same command again to finish them" in log and "Traceback" not in log
    again = _array(slurm, journal, tasks=2, epochs=1, name="resubmitted")
    wait_for(lambda: not _queued(slurm, again), 300, f"job array {again} finishing")
    trials = trials_of(journal, "eegnet")
    assert finished(trials) == 4 and count(trials, TrialState.RUNNING) == 0
