"""`compare` as work units: plan.json's units, --task, --status, --report; the local worker pool
(one process per GPU), Slurm job arrays for real (make slurm), PBS scripts through a fake qsub."""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local_eval.cli import main
from local_eval.compare.pool import Pool
from local_eval.compare.units import Unit
from tests.local_eval_fixtures import make_cifar100, make_image_folder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster_data")
    return (make_image_folder(root / "gen", classes=4, images_per_class=8),
            make_cifar100(root / "cifar", classes=4, train_per_class=8, test_per_class=4))


def plan_args(inputs, out, *extra):
    """mine, noise (one generation unit) and scratch, one seed: 1 + 3 units. Pre-training runs
    40 epochs so that a run can be killed between its checkpoints."""
    generated, cifar = inputs
    return ["compare", f"mine={generated}", "noise", "scratch", "--out", str(out),
            "--presets", "smoke", "--seeds", "1", "--data-root", str(cifar), "--workers", "0",
            "--no-progress", "--pretrain-epochs", "40", *extra]


def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


def exit_code(argv) -> int:
    """main's exit code, also when argparse itself exits (an unknown choice)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def one_line_error(capsys, words: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err, err


def fake_command(folder: Path, name: str, body: str) -> Path:
    """An executable `name` in `folder` (put first on PATH) running a shell `body`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# --- the plan as units ---------------------------------------------------------------------------

def test_prepare_only_writes_numbered_units_and_status_reads_them(inputs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(plan_args(inputs, out, "--prepare-only")) == 0
    assert "4 units, 0..3 (1 generation(s) first, then 3 runs)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["command.json", "plan.json"]
    plan = json.loads((out / "plan.json").read_text())
    assert [(u["index"], u["kind"], u["id"]) for u in plan["units"]] == [
        (0, "generate", "generate/noise"), (1, "run", "mine/smoke/seed0"),
        (2, "run", "noise/smoke/seed0"), (3, "run", "scratch/smoke/seed0")]
    assert [u.get("needs") for u in plan["units"]] == [None, [], [0], []]
    assert plan["units"][2]["path"] == "runs/noise/smoke/seed0"
    # The key of a run is its config, not where it ran: the same for every dataset of a preset.
    assert len({u["config_sha256"] for u in plan["units"][1:]}) == 1
    before = snapshot(out)
    assert main(plan_args(inputs, out, "--prepare-only")) == 0  # stable: the same bytes again
    assert snapshot(out) == before
    capsys.readouterr()

    assert main(["compare", str(out), "--status"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{out}: 4 units: 0 done, 0 running, 0 failed, 4 waiting")
    (out / "logs").mkdir()
    (out / "logs" / "unit-2.log").write_text("unit 2 ...\nRuntimeError: out of memory\n")
    (out / "runs" / "scratch" / "smoke" / "seed0").mkdir(parents=True)
    (out / "runs" / "scratch" / "smoke" / "seed0" / "report.json").write_text("{}")
    lock_dir = out / "cache" / "locks" / "unit-1"
    lock_dir.mkdir(parents=True)
    with open(lock_dir / ".lock", "a+") as held:  # a task of unit 1 is alive
        fcntl.flock(held, fcntl.LOCK_EX)
        assert main(["compare", "--out", str(out), "--status"]) == 0
    assert capsys.readouterr().out.strip().split("\n") == [
        f"{out}: 4 units: 1 done, 1 running, 1 failed, 1 waiting",
        "  unit 1 (mine / smoke / seed 0): running",
        "  unit 2 (noise / smoke / seed 0): failed: RuntimeError: out of memory"]


def test_status_reads_plan_json_alone_without_torch(inputs, tmp_path, capsys):
    """On a login node --status needs neither the datasets nor torch: plan.json says where
    each unit's files are."""
    out = tmp_path / "cmp"
    assert main(plan_args(inputs, out, "--prepare-only")) == 0
    (out / "command.json").unlink()  # not read by --status
    probe = ("import sys\nfrom local_eval.cli import main\n"
             f"code = main(['compare', {str(out)!r}, '--status'])\n"
             "assert 'torch' not in sys.modules, 'torch was imported'\nsys.exit(code)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"{out}: 4 units: 0 done, 0 running, 0 failed, 4 waiting"


def test_folder_commands_refuse_bad_input(inputs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(out), "--task", "0"]) == 2
    one_line_error(capsys, "holds no comparison (plan.json)")
    assert not out.exists()
    assert main(plan_args(inputs, out, "--prepare-only")) == 0
    capsys.readouterr()
    before = snapshot(out)
    for argv, words in [(["--task", "4"], "task 4 is outside the plan"),
                        (["--task", "-1"], "task -1 is outside the plan"),
                        (["--task-from-env"], "needs SLURM_ARRAY_TASK_ID, PBS_ARRAY_INDEX or LOCAL_EVAL_TASK")]:
        assert main(["compare", str(out), *argv]) == 2
        one_line_error(capsys, words)
    os.environ["SLURM_ARRAY_TASK_ID"] = "9"
    try:
        assert main(["compare", str(out), "--task-from-env"]) == 2
    finally:
        del os.environ["SLURM_ARRAY_TASK_ID"]
    one_line_error(capsys, "task 9 is outside the plan")
    assert snapshot(out) == before


@pytest.mark.parametrize("text, words", [
    ('{"argv": [], "argv": ["x"], "cwd": "."}', "duplicate key 'argv'"),
    ('["--out", "x"]', "holds a JSON list, not an object"),
    ('{"argv": [', "command.json is damaged"),
])
def test_a_damaged_command_json_is_one_line_naming_the_remedy(inputs, tmp_path, capsys, text, words):
    """command.json is read strictly (an object, no repeated key): a task never guesses a command;
    the line names the remedy, and the remedy rewrites the file."""
    out = tmp_path / "cmp"
    assert main(plan_args(inputs, out, "--prepare-only")) == 0
    written = (out / "command.json").read_bytes()
    (out / "command.json").write_text(text)
    capsys.readouterr()
    before = snapshot(out)
    assert main(["compare", str(out), "--task", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert words in err and "rerun the compare command with --prepare-only to rewrite it" in err, err
    assert snapshot(out) == before
    assert main(plan_args(inputs, out, "--prepare-only")) == 0
    assert (out / "command.json").read_bytes() == written


def test_executor_flags_refuse_bad_input(inputs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cmp"
    monkeypatch.setenv("PATH", str(fake_command(tmp_path / "bin", "true", "exit 0").parent))
    cases = [(["--executor", "kubernetes"], "argument --executor: invalid choice: 'kubernetes'"),
             (["--parallel", "0"], "--parallel must be at least 1, got 0"),
             (["--gpus", "0,7"], "GPU 0 does not exist (this machine has no CUDA GPU)"),
             (["--gpus", "0,0"], "lists a GPU twice"),
             (["--gpus", "a"], "write GPU indices"),
             (["--executor", "slurm"], "--executor slurm needs sbatch on PATH"),
             (["--executor", "pbs"], "--executor pbs needs qsub on PATH"),
             (["--executor", "slurm", "--parallel", "2"], "are for --executor local"),
             (["--partition", "gpu"], "--partition is for --executor slurm or pbs"),
             (["--executor", "slurm", "--dry-run", "--pbs-select", "1"], "--pbs-select is for"),
             (["--parallel", "2", "--stop-after-epochs", "1"], "--stop-after-epochs is for one")]
    for extra, words in cases:
        assert exit_code(plan_args(inputs, out, *extra)) == 2
        one_line_error(capsys, words)
    assert not out.exists()


def test_a_refused_submission_is_one_line_and_writes_nothing(inputs, tmp_path, capsys,
                                                             monkeypatch):
    out = tmp_path / "cmp"
    bin_dir = tmp_path / "bin"
    fake_command(bin_dir, "sbatch", 'cat >/dev/null\necho "sbatch: error: Batch job submission '
                                    'failed: Invalid account or account/partition combination '
                                    'specified" >&2\necho "second line" >&2\nexit 1')
    fake_command(bin_dir, "scancel", "exit 0")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert main(plan_args(inputs, out, "--executor", "slurm",
                          "--scheduler-option=--account=nope")) == 2
    one_line_error(capsys, "sbatch refused the job: sbatch: error: Batch job submission failed: "
                           "Invalid account or account/partition combination specified second "
                           "line")
    assert not out.exists()


def test_a_refused_second_array_cancels_the_first(inputs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cmp"
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    calls.mkdir()
    # The generations are accepted (job 41), the runs refused.
    fake_command(bin_dir, "sbatch", f'cat > /dev/null; echo "$@" >> {calls}/sbatch\n'
                                    'case "$*" in *dependency*) echo "sbatch: error: QOSMaxSubmitJobPerUserLimit" >&2; exit 1;; esac\n'
                                    'echo 41')
    fake_command(bin_dir, "scancel", f'echo "$@" >> {calls}/scancel')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    argv = plan_args(inputs, out, "--executor", "slurm", "--max-running", "2",
                     "--scheduler-option=--qos=short")
    assert main(argv) == 2
    one_line_error(capsys, "sbatch refused the job: sbatch: error: QOSMaxSubmitJobPerUserLimit")
    assert (calls / "scancel").read_text().split() == ["41"] and not out.exists()
    assert (calls / "sbatch").read_text().split("\n")[0].split() == ["--parsable", "--hold"]
    # What it would have submitted:
    assert main(argv + ["--dry-run"]) == 0
    printed = capsys.readouterr().out
    for line in ["#SBATCH --array=0%2", "#SBATCH --array=1-3%2", "#SBATCH --qos=short",
                 "#SBATCH --output=" + str(out) + "/logs/unit-%a.log", "#SBATCH --requeue",
                 "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}"]:
        assert line in printed.split("\n"), line
    assert ("# sbatch --parsable --dependency=afterok:<job id of the generate array> "
            "--kill-on-invalid-dep=yes") in printed and not out.exists()


ABCI = ["--executor", "pbs", "--partition", "rt_HG", "--pbs-select", "1", "--time", "1:00:00",
        "--scheduler-option=-P grp", "--max-running", "4"]


def fake_pbs(tmp_path, monkeypatch) -> Path:
    """qsub and qrls on PATH that record their arguments (and qsub its script) under calls/."""
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    fake_command(bin_dir, "qsub", f'n=$(ls {calls} 2>/dev/null | grep -c args); mkdir -p {calls}\n'
                                  f'echo "$@" > {calls}/$n.args; cat > {calls}/$n.script\n'
                                  f'echo "$((100 + n))[].pbs1"')
    fake_command(bin_dir, "qrls", f'echo "$@" > {calls}/release')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return calls


def test_pbs_scripts_through_a_fake_qsub(inputs, tmp_path, capsys, monkeypatch):
    """ABCI's form: the queue rt_HG, -l select=1, walltime, -P group; the runs wait for the
    generations; the first array is submitted on hold and released once the files are there."""
    out = tmp_path / "cmp"
    calls = fake_pbs(tmp_path, monkeypatch)
    assert main(plan_args(inputs, out, *ABCI, "--dry-run")) == 0
    printed = capsys.readouterr().out
    assert not out.exists() and "#PBS -J 1-3%4" in printed and "qsub -W depend=afterok" in printed
    assert main(plan_args(inputs, out, *ABCI)) == 0
    assert "submitted runs as job 101[].pbs1: units 1-3" in capsys.readouterr().out
    assert (calls / "0.args").read_text().split() == ["-h", "-v", "LOCAL_EVAL_TASK=0"]
    assert (calls / "1.args").read_text().split() == ["-W", "depend=afterok:100[].pbs1"]
    assert (calls / "release").read_text().strip() == "100[].pbs1"
    runs = (calls / "1.script").read_text().split("\n")
    for line in ["#PBS -J 1-3%4", "#PBS -q rt_HG", "#PBS -l select=1", "#PBS -l walltime=1:00:00",
                 "#PBS -P grp", "#PBS -r y"]:
        assert line in runs, line
    assert runs[-2].endswith(f"-m local_eval compare --out {out} --task-from-env")
    assert "#PBS -J" not in (calls / "0.script").read_text()  # an array of one is a plain job
    assert (out / "pbs" / "runs.sh").read_text() == (calls / "1.script").read_text()


@pytest.mark.slow
def test_the_pbs_script_runs_its_unit(inputs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cmp"
    fake_pbs(tmp_path, monkeypatch)
    assert main(plan_args(inputs, out, *ABCI)) == 0
    capsys.readouterr()
    # The generation's script (a plain job: one unit) with the variable its qsub -v set.
    result = subprocess.run(["bash", str(out / "pbs" / "generate.sh")], capture_output=True,
                            text=True, env=dict(os.environ, LOCAL_EVAL_TASK="0"), timeout=600)
    assert result.returncode == 0, (out / "logs" / "unit-0.log").read_text()
    assert "unit 0 (generate noise): done" in (out / "logs" / "unit-0.log").read_text()
    assert main(["compare", str(out), "--status"]) == 0
    assert "1 done, 0 running, 0 failed, 3 waiting" in capsys.readouterr().out
    before = snapshot(out)
    assert main(["compare", str(out), "--task", "0"]) == 0  # finished: a no-op
    assert "unit 0 (generate noise): done already" in capsys.readouterr().out
    assert snapshot(out) == before
    assert main(["compare", str(out), "--report"]) == 0  # no run finished yet: all pending
    summary = json.loads((out / "compare.json").read_text())
    assert not summary["complete"] and {r["status"] for r in summary["runs"]} == {"pending"}


# --- the worker pool: one unit per GPU at a time, runs after their generations ---------------------

def test_the_pool_never_puts_two_units_on_one_gpu(tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    # Each fake unit takes its GPU's flock without waiting (fails if another unit holds it),
    # works a little, and writes which GPU it had.
    body = ("import fcntl, os, sys, time\n"
            "gpu = os.environ['CUDA_VISIBLE_DEVICES']\n"
            f"handle = open(r'{record}/gpu' + gpu + '.lock', 'a')\n"
            "fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
            f"done = sorted(os.listdir(r'{record}'))\n"
            "time.sleep(0.2)\n"
            f"open(r'{record}/unit' + sys.argv[1], 'w').write(gpu + ' ' + ' '.join(done))\n")
    units = [Unit(0, "generate", "g"), Unit(1, "run", "a", "p", 0, ()),
             Unit(2, "run", "g", "p", 0, (0,))] + [Unit(i, "run", "a", "p", i, ())
                                                   for i in range(3, 9)]
    slots = [{"CUDA_VISIBLE_DEVICES": "5"}, {"CUDA_VISIBLE_DEVICES": "7"}]
    failed = Pool(units, slots, lambda u: [sys.executable, "-c", body, str(u.index)],
                  lambda u: tmp_path / "logs" / f"unit-{u.index}.log", lambda _: None).run()
    assert failed == [], [(tmp_path / "logs" / f"unit-{u.index}.log").read_text() for u in failed]
    seen = {i: (record / f"unit{i}").read_text().split() for i in range(9)}
    assert {gpu for gpu, *_ in seen.values()} == {"5", "7"}
    assert "unit0" in seen[2][1:]  # the run that reads generation 0 started after it ended


def test_the_pool_does_not_start_a_run_whose_generation_failed(tmp_path):
    units = [Unit(0, "generate", "g"), Unit(1, "run", "g", "p", 0, (0,)),
             Unit(2, "run", "a", "p", 0, ())]
    failed = Pool(units, [{}], lambda u: [sys.executable, "-c", f"raise SystemExit({u.index == 0})"],
                  lambda u: tmp_path / f"unit-{u.index}.log", lambda _: None).run()
    assert [u.index for u in failed] == [0, 1]
    assert not (tmp_path / "unit-1.log").exists() and (tmp_path / "unit-2.log").exists()


def test_gpus_are_handed_out_from_the_callers_visible_list(monkeypatch):
    from types import SimpleNamespace

    from local_eval.compare import pool
    from local_eval.compare.executors import worker_gpus
    from submission.errors import UserError

    monkeypatch.setattr(pool, "gpu_count", lambda: 3)
    args = SimpleNamespace(gpus=None, parallel=2, device="auto")
    assert worker_gpus(args) == ["0", "1"]  # --parallel N on a GPU machine: GPUs 0..N-1
    with pytest.raises(UserError, match="--parallel 4 puts one worker on each GPU and this "
                                        "machine has 3"):
        worker_gpus(SimpleNamespace(gpus=None, parallel=4, device="auto"))
    assert worker_gpus(SimpleNamespace(gpus=None, parallel=4, device="cpu")) is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6,7")
    assert pool.parse_gpus("0,2") == ["4", "7"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(pool, "usable_cores", lambda: 16)
    envs = pool.slot_environments(0, pool.parse_gpus("1,2"))
    assert [(e["CUDA_VISIBLE_DEVICES"], e["OMP_NUM_THREADS"]) for e in envs] == [("1", "8"),
                                                                                   ("2", "8")]
    assert [e["OMP_NUM_THREADS"] for e in pool.slot_environments(4, None)] == ["4"] * 4
    assert all("CUDA_VISIBLE_DEVICES" not in e for e in pool.slot_environments(4, None))


# --- the same comparison locally, on 2 workers, and on a real Slurm --------------------------------

def results(out: Path) -> tuple:
    """compare.json without what names the folder, and every run's losses."""
    summary = json.loads((out / "compare.json").read_text())
    for entry in summary.pop("data_stats").values():
        entry.pop("path", None)
    losses = {}
    for run in summary["runs"]:
        report = json.loads((out / run["run_dir"] / "report.json").read_text())
        losses[run["run_dir"]] = (report["pretrain"] and report["pretrain"]["loss"],
                                  report["finetune"]["loss"], report["finetune"]["top1"])
    return summary, losses


def run_cli(argv, env=None, timeout=900) -> subprocess.CompletedProcess:
    # One thread per process everywhere, so that every way of running computes alike.
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "local_eval", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "cmp"
    result = run_cli(plan_args(inputs, out))
    assert result.returncode == 0, result.stderr[-3000:]
    return results(out)


@pytest.mark.slow
def test_two_local_workers_give_the_same_comparison(inputs, reference, tmp_path):
    out = tmp_path / "cmp"
    result = run_cli(plan_args(inputs, out, "--parallel", "2"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 units to run on 2 CPU worker(s)" in result.stdout
    assert results(out) == reference
    assert sorted(p.name for p in (out / "logs").iterdir()) == [f"unit-{i}.log" for i in range(4)]
    again = run_cli(plan_args(inputs, out, "--parallel", "2"))  # all done: nothing to run
    assert "0 units to run" in again.stdout and results(out) == reference


def _squeue_empty(jobs) -> bool:
    listed = subprocess.run(["squeue", "-h", "-j", ",".join(jobs)], capture_output=True,
                            text=True).stdout
    return not listed.strip()


def _wait_for(condition, what: str, limit: float = 600) -> None:
    deadline = time.monotonic() + limit  # a hang fails the test instead of blocking CI
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_slurm_array_with_a_killed_task_gives_the_local_comparison(inputs, reference, tmp_path):
    if shutil.which("sbatch") is None:
        pytest.skip("sbatch not on PATH (as root: make slurm)")
    out = tmp_path / "cmp"
    submit = plan_args(inputs, out, "--executor", "slurm", "--cpus-per-task", "1")
    jobs = []
    try:
        result = run_cli(submit)
        assert result.returncode == 0, result.stderr[-3000:]
        jobs = re.findall(r"submitted \w+ as job (\d+)", result.stdout)
        assert len(jobs) == 2, result.stdout  # the generation array, then the runs array
        # Kill unit 1 (mine, seed 0) between two pre-training checkpoints.
        run_dir = out / "runs" / "mine" / "smoke" / "seed0"
        _wait_for(lambda: (run_dir / "pretrain.pt").is_file(), "unit 1's first checkpoint")
        subprocess.run(["scancel", f"{jobs[1]}_1"], check=True)
        _wait_for(lambda: _squeue_empty(jobs), "the arrays to end")
        assert not (run_dir / "report.json").exists(), "unit 1 finished before it was killed"
        status = run_cli(["compare", str(out), "--status"]).stdout
        assert "4 units: 3 done, 0 running, 1 failed, 0 waiting" in status, status
        assert "unit 1 (mine / smoke / seed 0): failed:" in status and "CANCELLED" in status
        # The same command again submits what is not done: unit 1, resumed from its checkpoint.
        result = run_cli(submit)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "submitted runs as job" in result.stdout and "units 1 " in result.stdout
        jobs += re.findall(r"submitted \w+ as job (\d+)", result.stdout)
        _wait_for(lambda: _squeue_empty(jobs), "the resubmitted task")
    finally:
        if jobs:
            subprocess.run(["scancel", *jobs], capture_output=True)
    log = (out / "logs" / "unit-1.log").read_text()
    assert log.count("unit 1 (mine / smoke / seed 0) ...") == 2  # killed, then resumed
    assert json.loads((out / "compare.json").read_text())["complete"]
    assert results(out) == reference
