"""dvc.yaml makes the explanation method a dimension: one method's settings reach only its own stages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pipeline(project, monkeypatch):
    from dvc.repo import Repo

    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy2(REPO / name, project / name)
    Repo.init(str(project), no_scm=True).close()
    return project


def _params_and_deps(root: Path) -> dict[str, tuple[set[str], set[str]]]:
    """{stage name: (params keys it depends on, its other dependencies)} as DVC resolves dvc.yaml."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    out = {}
    with Repo(str(root)) as repo:
        for st in repo.index.stages:
            keys = {k for d in st.deps if isinstance(d, ParamsDependency) for k in d.params}
            paths = {str(Path(d.def_path)) for d in st.deps if not isinstance(d, ParamsDependency)}
            out[st.name] = (keys, paths)
    return out


def test_one_methods_settings_reach_only_its_stages(pipeline):
    enabled = yaml.safe_load((pipeline / "params.yaml").read_text())["explain"]["methods_enabled"]
    assert len(enabled) >= 3 and "gradcam" in enabled
    stages = _params_and_deps(pipeline)
    for m in enabled:
        assert {f"explain_method@{m}", f"heatmaps_method@{m}", f"compare_method@{m}"} <= set(stages)
    for name, (keys, _paths) in stages.items():
        method_keys = {k for k in keys if k.startswith("explain.methods.")}
        if name.split("@")[0] in ("bench", "report"):  # they read every method's results, after all of them
            continue
        if name.startswith("explain_method@"):
            assert method_keys == {f"explain.methods.{name.split('@')[1]}"}, name
        else:  # LIME's stages and everything else: no method's settings, not the whole explain section
            assert not method_keys and "explain" not in keys and "explain.methods" not in keys, name
    # what follows a method's explanations is that method's heatmaps, then its comparison
    assert "explanations_methods/gradcam" in stages["heatmaps_method@gradcam"][1]
    assert "heatmaps_methods/gradcam" in stages["compare_method@gradcam"][1]
    assert not any(p.startswith("explanations_methods") for p in stages["heatmaps"][1])
