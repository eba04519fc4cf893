"""fer_xai.mlflow_ui: the experiment's tags for the model-training view and the runs' descriptions."""

import json
import math

from fer_xai import mlflow_ui


class _Client:
    def __init__(self):
        self.set = {}

    def set_experiment_tag(self, exp_id, key, value):
        self.set[key] = value


def test_new_experiment_gets_the_kind_and_the_view():
    client = _Client()
    mlflow_ui.tag_experiment(client, "1", {})
    assert client.set["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(client.set["mlflow.sharedViewState.fer-xai-trainings"])
    assert view["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "model"}]
    assert view["columnOrder"][:4] == [f"metrics.`{m}`" for m in mlflow_ui.HEADLINE_METRICS]


def test_kind_chosen_in_the_ui_is_kept_and_an_old_view_replaced():
    client = _Client()
    current = {"mlflow.experimentKind": "genai_development", "mlflow.sharedViewState.fer-xai-trainings": "{}"}
    mlflow_ui.tag_experiment(client, "1", current)
    assert "mlflow.experimentKind" not in client.set
    assert json.loads(client.set["mlflow.sharedViewState.fer-xai-trainings"]) == mlflow_ui.training_view()


def test_up_to_date_experiment_is_not_written():
    client = _Client()
    mlflow_ui.tag_experiment(client, "1", mlflow_ui.experiment_tags())
    assert client.set == {}


def test_runs_url_opens_the_runs_table_in_the_training_view_with_the_saved_view():
    url = mlflow_ui.runs_url("http://127.0.0.1:5000/", "7")
    assert url == ("http://127.0.0.1:5000/#/experiments/7/runs"
                   "?workflowType=machine_learning&viewStateShareKey=fer-xai-trainings")


def test_description_lists_the_headline_metrics_it_has():
    text = mlflow_ui.headline_description("songnet fold 2", {"test_accuracy": 0.8125, "test_macro_f1": math.nan,
                                                             "ekman/iou/Avg": 0.25, "loss": 0.1})
    assert text.startswith("**songnet fold 2**")
    assert "| test accuracy | `test_accuracy` | 0.8125 |" in text
    assert "| Ekman IoU (mean over expressions) | `ekman/iou/Avg` | 0.2500 |" in text
    assert "test_macro_f1" not in text and "loss" not in text and "ekman/f1/Avg" not in text


def test_a_store_refusing_tags_does_not_stop_the_stage(caplog):
    class Refusing:
        def set_experiment_tag(self, exp_id, key, value):
            raise PermissionError("read-only")

    mlflow_ui.tag_experiment(Refusing(), "1", {})
    assert "read-only" in caplog.text and "mlflow.experimentKind" in caplog.text
