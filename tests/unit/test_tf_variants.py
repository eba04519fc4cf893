"""The TensorFlow switch: the `cpu` (default) and `gpu` extras, and every install path that picks one.

The resolution tests ask PyPI (skipped offline) with ``pip install --dry-run`` against this venv:
already installed packages are kept, and ``--use-feature=fast-deps`` reads the new wheels' metadata
with HTTP range requests, so the ~3 GB of CUDA wheels are never downloaded (about 10 s).
"""

import json
import shutil
import socket
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version

import pytest
import yaml
from packaging.requirements import Requirement
from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _extra(name: str) -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][name]]


def test_tensorflow_only_in_the_two_variant_extras_with_one_pin():
    core = [Requirement(r).name for r in PYPROJECT["project"]["dependencies"]]
    assert not [n for n in core if n.startswith("tensorflow")], core
    (cpu,), (gpu,) = _extra("cpu"), _extra("gpu")
    assert cpu.name == "tensorflow-cpu" and not cpu.extras
    assert gpu.name == "tensorflow" and gpu.extras == {"and-cuda"}
    assert cpu.specifier == gpu.specifier  # one TensorFlow release for both builds
    assert not [r for r in _extra("test") if r.name.startswith("tensorflow")]


def _make_n(tmp_path, *args):
    return subprocess.run(["make", "-n", *args, f"VENV={tmp_path / 'venv'}"], cwd=REPO,
                          capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize("target", ["install", "install-test"])
def test_make_installs_cpu_by_default_and_gpu_on_request(tmp_path, target):
    cpu = _make_n(tmp_path, target)
    assert cpu.returncode == 0, cpu.stderr
    assert "-e '.[cpu" in cpu.stdout and "[gpu" not in cpu.stdout
    assert "uninstall -qq --yes tensorflow\n" in cpu.stdout  # a GPU build left in the venv goes first
    gpu = _make_n(tmp_path, target, "TF=gpu")
    assert gpu.returncode == 0, gpu.stderr
    assert "-e '.[gpu" in gpu.stdout and "[cpu" not in gpu.stdout
    assert "uninstall -qq --yes tensorflow-cpu" in gpu.stdout
    bad = _make_n(tmp_path, target, "TF=cuda")
    assert bad.returncode != 0 and "TF must be cpu or gpu" in bad.stderr


def test_dockerfile_python_env_and_ci_install_the_cpu_variant_by_default():
    from dockerfile_parse import DockerfileParser

    df = DockerfileParser(path=str(REPO / "Dockerfile"))
    args = [i["value"] for i in df.structure if i["instruction"] == "ARG"]
    assert "TF=cpu" in args
    runs = " ".join(i["value"] for i in df.structure if i["instruction"] == "RUN")
    assert 'pip install ".[${TF}]"' in runs
    env = yaml.safe_load((REPO / "python_env.yaml").read_text())
    assert "-e .[cpu]" in env["dependencies"]
    assert "make test" in (REPO / ".ci" / "run").read_text()  # TF's default: cpu


def test_cli_names_the_extras_when_tensorflow_is_missing(monkeypatch):
    import click
    from click.testing import CliRunner

    import fer_xai.cli as cli

    @click.command("needs-tf")
    def needs_tf():
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

    monkeypatch.setitem(cli.STAGES, "needs-tf", ("fer_xai.cli", "test stage"))
    monkeypatch.setattr(cli, "cli", needs_tf, raising=False)
    res = CliRunner().invoke(cli.main, ["needs-tf"])
    assert res.exit_code == 1 and ".[cpu]" in res.output and ".[gpu]" in res.output, res.output


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
        return True
    except OSError:
        return False


def _dry_run(tmp_path, extra: str) -> list[tuple[str, str]]:
    """What ``pip install '.[extra]'`` would install or change in this venv: (name, version)."""
    proj = tmp_path / "proj"
    (proj / "src" / "fer_xai").mkdir(parents=True)
    shutil.copy2(REPO / "pyproject.toml", proj)
    shutil.copy2(REPO / "README.md", proj)
    (proj / "src" / "fer_xai" / "__init__.py").write_text("")
    report = tmp_path / f"{extra}.json"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--only-binary", ":all:",
         "--use-feature=fast-deps", "--no-build-isolation", "--no-cache-dir", "--report", str(report),
         f"{proj}[{extra}]"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    items = json.loads(report.read_text())["install"]
    return sorted((i["metadata"]["name"].lower(), i["metadata"]["version"]) for i in items)


@pytest.mark.skipif(not _pypi_reachable(), reason="PyPI not reachable")
def test_gpu_variant_resolves_with_the_project_without_downloading_cuda(tmp_path):
    plan = dict(_dry_run(tmp_path, "gpu"))
    (gpu,) = _extra("gpu")
    assert "tensorflow" in plan and gpu.specifier.contains(plan["tensorflow"]), plan
    assert "nvidia-cudnn-cu12" in plan and "nvidia-cublas-cu12" in plan, plan
    assert "tensorflow-cpu" not in plan


@pytest.mark.skipif(not _pypi_reachable(), reason="PyPI not reachable")
def test_cpu_default_is_this_venv_unchanged(tmp_path):
    # The default variant needs nothing this venv lacks (only the project itself is reinstalled),
    # and this venv has the CPU build, not the CUDA one.
    assert [n for n, _ in _dry_run(tmp_path, "cpu")] == ["fer-xai"]
    (cpu,) = _extra("cpu")
    assert cpu.specifier.contains(version("tensorflow-cpu"))
    with pytest.raises(PackageNotFoundError):
        version("tensorflow")
