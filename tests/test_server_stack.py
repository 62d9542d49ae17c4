"""The paths a submission takes to the server, end to end: `rehearse` runs the server sequence without a
network, every recipe's zip passes that rehearsal under the server stack (.venv-server), and the Docker
image is built and run (`make docker-rehearse`). CI (.ci/run) installs all of it, and REQUIRE_FULL_STACK=1
makes an unexpected skip fail the run (tests/full_stack.py)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from submission.recipes import list_recipes

from .test_pack import assert_dataset, assert_one_line_error, cli, tiny_zip

REPO = Path(__file__).resolve().parents[1]
SERVER_PYTHON = REPO / ".venv-server" / "bin" / "python"
needs_server_stack = pytest.mark.skipif(not SERVER_PYTHON.exists(),
                                        reason="no .venv-server (make venv-server) with Python 3.10 + torch 2.0.1")


def unshare_refusal() -> str:
    """Empty when this machine lets a process start in a fresh network namespace; else why not."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return "no unshare command (util-linux)"
    said = []
    for flags in (["-n"], ["-r", "-n"]):
        probe = subprocess.run([unshare, *flags, "true"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return ""
        said.append(probe.stderr.strip())
    return "unshare -n and -rn are refused here: " + "; ".join(said)


needs_netns = pytest.mark.skipif(bool(unshare_refusal()), reason=unshare_refusal() or "-")

# Writes a valid one-image dataset; CONNECTING_GENERATOR first connects to the test's listener on
# loopback (outside rehearse's namespace), so without isolation it passes rehearse.
GENERATOR = """\
import os, socket
from PIL import Image
class Generator:
    @classmethod
    def get_params(cls, params_path):
        pass
    @classmethod
    def generate(cls, out_dir):
        if {connect}:
            with socket.create_connection(("127.0.0.1", int(os.environ["REHEARSE_TEST_PORT"])), timeout=10) as c:
                c.sendall(b"the generator reached the network")
        os.makedirs(os.path.join(out_dir, "c0"))
        image = Image.new("RGB", (8, 8))
        image.putpixel((0, 0), (255, 0, 0))  # verify rejects a blank image
        image.save(os.path.join(out_dir, "c0", "0.png"))
"""
CONNECTING_GENERATOR = GENERATOR.format(connect=True)
OFFLINE_GENERATOR = GENERATOR.format(connect=False)


@needs_netns
def test_a_generator_that_opens_a_socket_fails_under_rehearse(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        out = tmp_path / "dataset"
        result = cli("rehearse", str(tiny_zip(tmp_path / "net.zip", CONNECTING_GENERATOR)), str(out),
                     env={**os.environ, "REHEARSE_TEST_PORT": str(port)})
        with pytest.raises(BlockingIOError):  # nothing connected from inside
            listener.accept()
    assert "rehearse: network-isolated: the server sequence runs in a fresh network namespace" in result.stdout
    # The child's traceback streams through first; rehearse's own verdict is one line at the end.
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the packed generator failed with exit code 1 (traceback above)"), last
    assert "it tried to use the network ([Errno 101] Network is unreachable), which the server does not have" in last
    assert not (out / "c0").exists()


def test_rehearse_says_when_it_cannot_isolate_the_network(tmp_path):
    """No unshare on PATH: the run still happens and says it was not isolated, and why."""
    bin_dir = tmp_path / "bin"  # a PATH with python but without unshare
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    out = tmp_path / "dataset"
    env = {**os.environ, "PATH": str(bin_dir)}
    result = cli("rehearse", str(tiny_zip(tmp_path / "offline.zip", OFFLINE_GENERATOR)), str(out), env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    if [name for _, name in socket.if_nameindex() if name != "lo"]:
        assert "rehearse: NOT network-isolated (no `unshare` command (util-linux))" in result.stdout, result.stdout
    else:  # a machine with loopback only (e.g. inside docker --network none) is isolated anyway
        assert "rehearse: network-isolated: the server sequence runs in a network with no interface but loopback" \
            in result.stdout, result.stdout
    assert sorted(p.name for p in (out / "c0").iterdir()) == ["0.png"]


@pytest.mark.slow
@needs_server_stack
@needs_netns
@pytest.mark.parametrize("recipe", list_recipes())
def test_every_recipe_zip_passes_isolated_rehearsal_under_the_server_stack(recipe, tmp_path):
    """Each recipe packed small (2 classes x 2 images, 64 px), run as the server does: Python 3.10 +
    torch 2.0.1 and the zip's requirements, in a fresh network namespace."""
    packed = tmp_path / f"{recipe}.zip"
    result = cli("pack", str(packed), "--recipe", recipe, "--classes", "2", "--images-per-class", "2",
                 "--image-size", "64", "--workers", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "dataset"
    result = cli("rehearse", str(packed), str(out), "--python", str(SERVER_PYTHON))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "(Python 3.10." in result.stdout and "rehearse: network-isolated" in result.stdout, result.stdout
    assert "passes the organizer-style validation (2 classes, 4 images, all 64x64 RGB)" in result.stdout, result.stdout
    assert_dataset(out, classes=2, images_per_class=2, size=64)


# --- make docker-rehearse ------------------------------------------------------------------------

def docker_refusal() -> str:
    """Empty when `docker info` answers; else why the Docker test cannot run."""
    if shutil.which("docker") is None:
        return "Docker is not installed (as root: make docker-engine)"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 60 s"
    if info.returncode != 0:
        return "`docker info` fails, dockerd is not running (as root: make docker-engine)"
    return ""


def make(*args: str, env=None, timeout: float = 3000) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(bool(docker_refusal()), reason=docker_refusal() or "-")
def test_make_docker_rehearse_builds_and_runs_the_image_without_network():
    result = make("docker-rehearse")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "docker-rehearse: built fractal-server:rehearse" in output
    # Inside the container unshare is not allowed; --network none leaves only loopback.
    assert "rehearse: network-isolated: the server sequence runs in a network with no interface but loopback" in output
    assert "(Python 3.10." in output and "torch 2.0.1" in output
    assert "docker-rehearse: ran the zip in fractal-server:rehearse with --network none" in output
    assert "docker-rehearse: OK: build/docker/out/dataset, written inside the container, passes verify" in output
    assert_dataset(REPO / "build" / "docker" / "out" / "dataset", classes=3, images_per_class=4, size=64)


def test_docker_rehearse_without_docker_says_how_to_install_it(tmp_path):
    result = subprocess.run([str(REPO / "scripts" / "docker_rehearse.sh")], capture_output=True, text=True,
                            env={**os.environ, "DOCKER": str(tmp_path / "no-docker")}, timeout=60)
    assert_one_line_error(result, "Docker is not installed", "make docker-engine", "apt-get install docker.io")
    assert result.stdout == ""  # nothing packed or built


def test_docker_rehearse_without_a_daemon_says_how_to_start_it(tmp_path):
    fake = tmp_path / "docker"  # a docker client whose daemon does not answer
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(0o755)
    result = subprocess.run([str(REPO / "scripts" / "docker_rehearse.sh")], capture_output=True, text=True,
                            env={**os.environ, "DOCKER": str(fake)}, timeout=60)
    assert_one_line_error(result, "its daemon does not answer", "make docker-engine")
    assert result.stdout == ""


def test_make_docker_rehearse_fails_without_docker():
    result = make("docker-rehearse", "DOCKER=/nonexistent/docker")
    assert result.returncode != 0
    assert "error: Docker is not installed; as root run `make docker-engine`" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the stand-in base needs root (debootstrap)")
@pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap is not installed (as root: make docker-engine)")
@needs_server_stack
def test_a_stand_in_base_that_fails_names_the_failing_step(tmp_path):
    """A Debian mirror that refuses connections (loopback, closed port): debootstrap fails and the
    one-line error names that step and the log."""
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {**os.environ, "DEBIAN_MIRROR": f"http://127.0.0.1:{port}/debian"}
    result = subprocess.run([str(REPO / "scripts" / "docker_standin_base.sh")], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout == ""  # no image tag printed
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [result.stderr.strip().splitlines()[-1]], result.stderr  # progress lines, then one error
    assert "the stand-in base failed at step 'debootstrap' (" in errors[0], errors
    assert f"127.0.0.1:{port}" in errors[0] and "full log: build/docker-standin/standin.log" in errors[0], errors


# --- REQUIRE_FULL_STACK=1 ------------------------------------------------------------------------

PROBE_TESTS = """\
import pytest

def test_runs():
    pass

@pytest.mark.skip(reason="{reason}")
def test_skipped():
    pass
"""


@pytest.mark.parametrize("reason, fails", [("no CJK font installed (make fonts)", True),
                                           ("`docker info` fails, dockerd is not running (as root: make docker-engine)",
                                            True),
                                           ("debootstrap is not installed (as root: make docker-engine)", True),
                                           ("sbatch not on PATH (as root: make slurm)", True),
                                           ("the stand-in base needs root (debootstrap)", True),
                                           ("needs a CUDA device", False),
                                           ("root may write into a read-only folder", False),
                                           ("root ignores permission bits", False)])
def test_full_stack_mode_fails_a_run_on_an_unexpected_skip(tmp_path, reason, fails):
    (tmp_path / "test_probe.py").write_text(PROBE_TESTS.format(reason=reason))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.full_stack", "-p", "no:cacheprovider",
               "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")]
    # Without REQUIRE_FULL_STACK even when CI sets it for the whole suite.
    env = {**{k: v for k, v in os.environ.items() if k != "REQUIRE_FULL_STACK"}, "PYTHONPATH": str(REPO)}
    plain = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert plain.returncode == 0, plain.stdout[-2000:]
    strict = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                            env={**env, "REQUIRE_FULL_STACK": "1"}, timeout=120)
    assert strict.returncode == (1 if fails else 0), strict.stdout[-2000:]
    assert ("skips that fail this run" in strict.stdout) == fails, strict.stdout[-2000:]
    if fails:
        assert f"test_probe.py::test_skipped: {reason}" in strict.stdout
