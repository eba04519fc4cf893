import pytest
from tests.conftest import REPO, write_params

from fer_xai.config import Params, ParamsError, load_params


def test_repo_params_file_is_valid_and_complete():
    p = load_params(REPO / "params.yaml")
    assert isinstance(p, Params)
    assert p.split.n_folds == 5
    assert [d.name for d in p.data.datasets] == ["synthetic"]


def test_unknown_key_is_an_error_naming_file_and_key(project):
    path = write_params(project, {"prepare": {"size": 128, "sise": 3}})
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(path) in str(err.value) and "prepare.sise" in str(err.value)


def test_unknown_section_is_an_error(project):
    path = write_params(project, {"trian": {}})
    with pytest.raises(ParamsError, match="trian"):
        load_params(path)


def test_bad_value_and_missing_file(project):
    path = write_params(project, {"split": {"n_folds": 1}})
    with pytest.raises(ParamsError, match="split.n_folds"):
        load_params(path)
    with pytest.raises(ParamsError, match="not found"):
        load_params(project / "nope.yaml")


def test_overrides_apply_and_validate(project):
    path = write_params(project, {"split": {"seed": 1}})
    p = load_params(path, ["split.seed=7", "prepare.size=96"])
    assert p.split.seed == 7 and p.prepare.size == 96
    with pytest.raises(ParamsError, match="prepare.nonsense"):
        load_params(path, ["prepare.nonsense=1"])
    with pytest.raises(ParamsError, match="KEY=VALUE|dotted.key=value"):
        load_params(path, ["split.seed"])


def test_duplicate_dataset_names_rejected(project):
    path = write_params(project, {"data": {"datasets": [{"name": "a"}, {"name": "a"}]}})
    with pytest.raises(ParamsError, match="duplicate"):
        load_params(path)
