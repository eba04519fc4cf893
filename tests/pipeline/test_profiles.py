"""``fer-xai profile``: the paper profile's values, how it is written, and its DVC stage list."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fer_xai import profiles as prof
from fer_xai.config import _paper_networks, load_params
from fer_xai.datasets import ADAPTERS
from fer_xai.models.zoo import NETWORKS
from helpers.cli import invoke

REPO = Path(__file__).resolve().parents[2]
PAPER_DATASETS = ["ckplus", "bu4dfe", "jaffe", "wsefep", "fega"]


@pytest.fixture
def proj(project):
    """The repo's params.yaml, dvc.yaml and profiles/ in an isolated project root."""
    shutil.copy2(REPO / "params.yaml", project / "params.yaml")
    shutil.copy2(REPO / "dvc.yaml", project / "dvc.yaml")
    shutil.copytree(REPO / "profiles", project / "profiles")
    return project


def test_paper_profile_holds_the_papers_settings():
    p = prof.load_profile(str(REPO / "profiles" / "paper.yaml"))
    v = p.values
    assert v["train.models"] == list(NETWORKS)  # all twelve networks
    assert len(v["train.models"]) == 12
    paper = _paper_networks()
    for m in NETWORKS:  # native sizes and the paper's recipes, the same as fer_xai.config's
        assert v[f"train.networks.{m}"] == paper[m].model_dump(exclude={"batch_size", "augment"}), m
    assert v["train.allow_random_init"] is False and v["train.input_norm"] == "none"
    assert v["train.batch_size"] == 128
    assert v["explain.positives_per_class"] == 100 and v["explain.num_samples"] == 1000
    names = [d["name"] for d in v["data.datasets"]]
    assert names == PAPER_DATASETS and "synthetic" not in names
    for d in v["data.datasets"]:  # registered as `fer-xai data add` does: name, adapter, options
        assert set(d) == {"name", "adapter", "options"} and d["adapter"] in ADAPTERS and d["options"] == {}


def test_apply_writes_params_and_keeps_comments(proj):
    before = (proj / "params.yaml").read_text()
    res = invoke(proj, "profile", "apply", "paper")
    assert "value(s) changed by profile 'paper'" in res.output
    # Every dataset folder is missing here: the command says how to add them.
    for name in PAPER_DATASETS:
        assert f"fer-xai data add {name} " in res.output
    after = (proj / "params.yaml").read_text()
    p = load_params(proj / "params.yaml")
    assert p.train.models == tuple(NETWORKS) and p.train.batch_size == 128
    assert not p.train.allow_random_init and p.train.input_norm == "none"
    assert p.train.random_init_bn_momentum is None
    assert {m: c.model_dump() for m, c in p.train.networks.items()} == \
        {m: c.model_dump() for m, c in _paper_networks().items()}
    assert p.explain.positives_per_class == 100 and p.explain.num_samples == 1000
    assert [d.name for d in p.data.datasets] == PAPER_DATASETS
    assert p.prepare.size >= max(c.input_size for c in p.train.networks.values())
    # Comments, untouched values and their `null`s survive; changed keys say where they come from.
    first_lines = [ln for ln in before.splitlines() if ln.startswith("#")]
    assert first_lines and all(ln in after for ln in first_lines)
    for line in before.splitlines():
        key = line.split(":", 1)[0].strip()
        if line.startswith("  ") and not line.startswith("   ") and key in ("seed", "out_dir", "workers"):
            assert line in after, line
    assert re.search(r"allow_random_init: false +# paper profile: the eight backbones", after)
    assert "null: keep" not in after  # the demo comment on random_init_bn_momentum is replaced
    raw_before, raw_after = yaml.safe_load(before), yaml.safe_load(after)
    changed = {k.split(".")[0] for k in prof.load_profile("paper").values}
    for section in set(raw_before) - changed:
        assert raw_after[section] == raw_before[section], section
    assert raw_after["train"]["weights_dir"] is None and "weights_dir: null" in after
    # A second apply changes nothing; diff says so.
    res = invoke(proj, "profile", "apply", "paper")
    assert "0 value(s) changed" in res.output
    assert (proj / "params.yaml").read_text() == after
    assert "already matches" in invoke(proj, "profile", "diff", "paper").output


def test_diff_show_list_and_dry_run_change_nothing(proj):
    before = (proj / "params.yaml").read_text()
    out = invoke(proj, "profile", "diff", "paper").output
    assert "explain.positives_per_class:" in out and "+ 100" in out
    assert "train.allow_random_init:" in out and "+ false" in out
    out = invoke(proj, "profile", "apply", "paper", "--dry-run").output
    assert "train.batch_size: " in out and "-> 128" in out
    assert "paper:" in invoke(proj, "profile", "list").output
    assert "explain.num_samples: 1000" in invoke(proj, "profile", "show", "paper").output
    assert (proj / "params.yaml").read_text() == before


def test_datasets_added_before_keep_their_registration(proj):
    from fer_xai.datasets.register import register_dataset

    register_dataset(proj / "params.yaml", "jaffe", "jaffe", {"include_neutral": True})
    register_dataset(proj / "params.yaml", "mine", "folders", {})
    (proj / "data" / "raw" / "jaffe").mkdir(parents=True)
    res = invoke(proj, "profile", "apply", "paper")
    p = load_params(proj / "params.yaml")
    assert [d.name for d in p.data.datasets] == PAPER_DATASETS  # synthetic and mine dropped
    jaffe = next(d for d in p.data.datasets if d.name == "jaffe")
    assert jaffe.adapter == "jaffe" and jaffe.options == {"include_neutral": True}
    assert "fer-xai data add jaffe" not in res.output and "fer-xai data add ckplus" in res.output
    # The blank line that separates `data:` from the next section is still there.
    assert re.search(r"options: \{\}\n\nprepare:", (proj / "params.yaml").read_text())


def test_bad_profiles_fail_clearly_and_change_nothing(proj):
    before = (proj / "params.yaml").read_text()
    res = invoke(proj, "profile", "apply", "nosuch", ok=False)
    assert res.exit_code != 0 and "profile 'nosuch' not found" in res.output and "paper" in res.output
    bad = proj / "bad.yaml"
    bad.write_text("set:\n  train.models: [songnet, nosuchnet]\n")
    res = invoke(proj, "profile", "apply", str(bad), ok=False)
    assert res.exit_code != 0 and "left unchanged" in res.output and "nosuchnet" in res.output
    bad.write_text("settings:\n  train.batch_size: 8\n")
    res = invoke(proj, "profile", "apply", str(bad), ok=False)
    assert res.exit_code != 0 and "'set'" in res.output
    assert (proj / "params.yaml").read_text() == before
    assert not list(proj.glob(".params.yaml*"))


# ----------------------------------------------------------------------------- DVC stage list


def _dvc(root: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"dvc {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _git_dvc_project(root: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    _dvc(root, "init", "-q")


KINDS = ("train", "explain", "train_folds", "explain_folds")


def _matrix_stages(root: Path) -> dict[str, set[str]]:
    names = _dvc(root, "stage", "list", "--name-only").split()
    return {kind: {n.split("@", 1)[1] for n in names if n.startswith(f"{kind}@")} for kind in KINDS}


def _check_pipeline(root: Path, p) -> None:
    """Every (model, fold) of train.models x train.folds is trained and explained exactly once:
    by a train@/explain@ stage of its own (dvc_stages.per_fold) or by its network's
    train_folds@/explain_folds@ stage, which runs every fold (per_network); each explanation
    stage follows its training; `dvc status` lists them all as to-run, without running anything."""
    import json

    st = p.train.dvc_stages
    per_fold = {f"{m}-{k}" for m in st.per_fold for k in p.train.folds}
    per_network = set(st.per_network)
    stages = _matrix_stages(root)
    assert stages["train"] == per_fold and stages["explain"] == per_fold
    assert stages["train_folds"] == per_network and stages["explain_folds"] == per_network
    covered = [(m, k) for m in st.per_fold for k in p.train.folds] + \
              [(m, k) for m in st.per_network for k in p.train.folds]
    assert sorted(covered) == sorted((m, k) for m in p.train.models for k in p.train.folds)
    # A per-network stage runs every fold: its command names no fold and its params include them.
    spec = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    for kind in ("train_folds", "explain_folds"):
        assert "--fold" not in spec[kind]["cmd"] and "train.folds" in spec[kind]["params"]
    dot = _dvc(root, "dag", "--dot")
    edges = set(re.findall(r'"([^"]+)" -> "([^"]+)"', dot))
    for item in per_fold:
        assert (f"train@{item}", f"explain@{item}") in edges, item
    for item in per_network:
        assert (f"train_folds@{item}", f"explain_folds@{item}") in edges, item
    status = json.loads(_dvc(root, "status", "--json"))
    for kind, items in (("train", per_fold), ("explain", per_fold), ("train_folds", per_network),
                        ("explain_folds", per_network)):
        assert {s for s in status if s.startswith(f"{kind}@")} == {f"{kind}@{i}" for i in items}
    assert not (root / "models").exists() and not (root / "explanations").exists()  # nothing ran


def test_paper_profile_pipeline_has_60_trainings_and_60_explanation_jobs(proj):
    _git_dvc_project(proj)
    invoke(proj, "profile", "apply", "paper")
    p = load_params(proj / "params.yaml")
    assert len(p.train.models) == 12 and len(p.train.folds) == 5
    _check_pipeline(proj, p)
    stages = _matrix_stages(proj)
    assert len(stages["train"]) == 60 and len(stages["explain"]) == 60  # one stage per training
    assert not stages["train_folds"] and not stages["explain_folds"]


def test_demo_profile_pipeline_is_train_models_times_folds(proj):
    _git_dvc_project(proj)
    p = load_params(proj / "params.yaml")
    assert len(p.train.models) >= 4
    _check_pipeline(proj, p)
    # The demo trains and explains each network's folds in one process (one stage per network).
    assert _matrix_stages(proj)["train_folds"] == set(p.train.models)


def test_dvc_stage_lists_name_each_network_once(proj):
    raw = yaml.safe_load((proj / "params.yaml").read_text())
    raw["train"]["dvc_stages"] = {"per_fold": ["songnet"], "per_network": ["songnet", "weinet"]}
    (proj / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(Exception, match=r"\['songnet'\] listed more than once"):
        load_params(proj / "params.yaml")
    raw["train"]["dvc_stages"] = {"per_fold": [], "per_network": ["songnet", "nonet"]}
    (proj / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(Exception, match=r"\['nonet'\] have no entry in train.networks"):
        load_params(proj / "params.yaml")


def test_profile_that_would_make_params_invalid_leaves_it_byte_identical(proj):
    before = (proj / "params.yaml").read_bytes()
    bad = proj / "too_small.yaml"
    bad.write_text("description: x\nset:\n  prepare.size: 100  # comment\n"
                   "  data.datasets: [{name: a, adapter: csv}, {name: a, adapter: csv}]\n")
    res = invoke(proj, "profile", "apply", str(bad), ok=False)
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert f"applying it would make {proj / 'params.yaml'} invalid, left unchanged" in res.output
    assert f"{proj / 'params.yaml'}: invalid parameters" in res.output  # the file, not a temporary one
    assert "duplicate dataset names in data.datasets" in res.output
    assert (proj / "params.yaml").read_bytes() == before
    with pytest.raises(prof.ProfileError, match="duplicate dataset names"):
        prof.apply_profile(proj / "params.yaml", prof.load_profile(str(bad)))
    assert (proj / "params.yaml").read_bytes() == before
    assert not [p.name for p in proj.iterdir() if p.name.startswith(".")]
