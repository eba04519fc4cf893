"""The project's plumbing: Dockerfile, dvc.yaml, MLproject, Makefile, DVC config, git ignores."""

import configparser
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from tests.conftest import REPO


def test_dockerfile_lints_clean_with_hadolint():
    exe = shutil.which("hadolint") or str(REPO / ".venv" / "bin" / "hadolint")
    out = subprocess.run([exe, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_is_multistage_pinned_and_not_root():
    df = DockerfileParser(path=str(REPO / "Dockerfile"))
    froms = [i["value"] for i in df.structure if i["instruction"] == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    for base in froms:
        image = base.split()[0]
        assert re.match(r"python:3\.11\.\d+-slim", image), f"unpinned or non-slim base {image}"
    users = [i["value"].strip() for i in df.structure if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    cmd = [i["value"] for i in df.structure if i["instruction"] == "CMD"]
    assert cmd and "dvc" in cmd[-1] and "repro" in cmd[-1]


def test_dvc_stages_call_only_the_cli():
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert {"synth", "prepare", "split"} <= set(dvc["stages"])
    for name, stage in dvc["stages"].items():
        cmds = stage["cmd"] if isinstance(stage["cmd"], list) else [stage["cmd"]]
        for cmd in cmds:
            assert cmd.startswith("fer-xai "), f"stage {name} runs {cmd!r}"


def test_mlproject_entry_points_call_the_cli():
    mlp = yaml.safe_load((REPO / "MLproject").read_text())
    assert "python_env" in mlp and (REPO / mlp["python_env"]).is_file()
    eps = mlp["entry_points"]
    assert {"main", "synth", "prepare", "split", "train", "evaluate"} <= set(eps)
    assert eps["main"]["command"].startswith("dvc repro")
    from fer_xai.cli import STAGES

    for name, ep in eps.items():
        if name != "main":
            assert "fer_xai.mlproject" in ep["command"]
            stage = re.search(r"[}'] ([a-z_]+)( |$)", ep["command"])
            assert stage and stage.group(1) in STAGES, ep["command"]
            # an entry point named after a stage calls that stage (explain_images calls explain)
            assert stage.group(1) == name or name not in STAGES, ep["command"]


def test_mlproject_adapter_passes_overrides(project):
    from tests.conftest import write_params

    params = write_params(project, {})
    out = subprocess.run(
        [sys.executable, "-m", "fer_xai.mlproject", "--params", str(params),
         "--overrides", "split.n_folds=1", "split", "--no-mlflow"],
        capture_output=True, text=True, cwd=project,
    )
    assert out.returncode != 0 and "split.n_folds" in out.stderr


def test_makefile_has_the_readme_commands_and_ci_calls_make_test():
    make = (REPO / "Makefile").read_text()
    for target in ("run:", "test:", "ui:"):
        assert re.search(rf"^{target}", make, re.M), target
    assert "dvc repro" in make and "pytest" in make
    assert "make test" in (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def test_dvc_default_remote_is_local_and_ignored():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / ".dvc" / "config")
    remote = cfg["core"]["remote"]
    url = cfg[f"'remote \"{remote}\"'"]["url"]
    assert (REPO / ".dvc" / url).resolve() == (REPO / ".dvc-storage").resolve()
    ignored = (REPO / ".gitignore").read_text()
    for path in ("/.dvc-storage/", "/mlflow.db", "/mlartifacts/", "/data/prepared/", ".venv/"):
        assert path in ignored


@pytest.mark.parametrize("cmd", [["--help"], ["prepare", "--help"], ["split", "--help"]])
def test_cli_help(cmd):
    from click.testing import CliRunner

    from fer_xai.cli import main

    res = CliRunner().invoke(main, cmd)
    assert res.exit_code == 0, res.output
