"""One network built, compiled and fitted the same way for ``fer-xai train`` and ``fer-xai tune``.

``compile_network`` applies the training settings of ``params.yaml`` (weights, random-init
batch-norm momentum, input normalisation, memory-safe batch size, optimizer, mixed precision,
op determinism); ``epoch_logger``
logs each epoch's metrics and sends them to the active MLflow run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import NetworkTrainParams, Params, TrainParams
from ..paths import resolve
from .memory import fit_batch_size

log = logging.getLogger(__name__)


@dataclass
class CompiledNetwork:
    model: Any  # a compiled keras.Model
    pretrained: bool  # False when a backbone fell back to random initialisation
    weights_path: str | None
    batch_size: int  # after the memory check (may be below the configured batch)


def optimizer(cfg: NetworkTrainParams):
    import keras

    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=cfg.learning_rate)
    if cfg.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=cfg.learning_rate)
    return keras.optimizers.SGD(learning_rate=cfg.learning_rate, momentum=0.9)


def set_bn_momentum(model, momentum: float) -> int:
    import keras

    layers = [lay for lay in model._flatten_layers() if isinstance(lay, keras.layers.BatchNormalization)]
    for lay in layers:
        lay.momentum = momentum
    return len(layers)


def predict(model, images: np.ndarray, batch: int) -> np.ndarray:
    # predict_on_batch: model.predict on numpy arrays can stall for seconds at its teardown.
    out = [np.asarray(model.predict_on_batch(images[i:i + batch, ..., None].astype(np.float32)))
           for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros((0, 6), np.float32)


def epoch_logger(use_mlflow: bool):
    """A Keras callback that logs each epoch's metrics (and sends them to the active MLflow run)."""
    import keras

    class EpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            if use_mlflow and logs:
                import mlflow

                mlflow.log_metrics(logs, step=epoch + 1)
            log.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in logs.items()})

    return EpochLogger()


def apply_numerics(tp: TrainParams) -> None:
    """Keras' global dtype policy and TensorFlow's op determinism from ``train.mixed_precision``
    and ``train.op_determinism``; both are process-wide, so they are set before every build."""
    import keras
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # disable/is_enabled are not exported

    keras.mixed_precision.set_global_policy("float32" if tp.mixed_precision == "off" else tp.mixed_precision)
    if tp.op_determinism:
        tf.config.experimental.enable_op_determinism()
    elif tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


def compile_network(params: Params, model_id: str, cfg: NetworkTrainParams) -> CompiledNetwork:
    """Build ``model_id`` with recipe ``cfg`` and the ``train:`` settings, and compile it.

    Call ``keras.utils.set_random_seed`` first for reproducible initial weights.
    """
    from ..models.zoo import build_network

    tp = params.train
    apply_numerics(tp)
    built = build_network(
        model_id, input_size=cfg.input_size, pretrained=cfg.pretrained,
        weights_dir=resolve(tp.weights_dir) if tp.weights_dir else None,
        allow_random_init=tp.allow_random_init, seed=tp.seed, input_norm=tp.input_norm,
    )
    model, pretrained = built.model, built.pretrained
    if not pretrained and tp.random_init_bn_momentum is not None:
        n_bn = set_bn_momentum(model, tp.random_init_bn_momentum)
        if n_bn:
            log.info("%s: batch-norm momentum set to %s on %d layers (random init)", model_id,
                     tp.random_init_bn_momentum, n_bn)
    batch = fit_batch_size(model, cfg.batch_size or tp.batch_size, tp.max_memory_gib)
    model.compile(optimizer=optimizer(cfg), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return CompiledNetwork(model, pretrained, built.weights_path, batch)


class NetworkCache:
    """One compiled network per process, reset to its freshly built state for every fold.

    Building a network and tracing its train step is paid once per process (MobileNetV3's tracing
    is the largest cost; later folds still pay a partial retrace), so the
    folds that ``fer-xai train --model M`` trains one after another reuse the model and its
    compiled functions. Before each fold every model
    variable (weights, batch-norm statistics, dropout seed states) and every optimizer variable
    (step counter, moments) is restored to its value right after the seeded build, which is the
    state a new build gives: a fold trained here equals that fold trained alone (tested).
    """

    def __init__(self) -> None:
        self._key: str | None = None
        self._net: CompiledNetwork | None = None
        self._model_init: list[np.ndarray] = []
        self._opt_init: list[np.ndarray] = []

    def get(self, params: Params, model_id: str, cfg: NetworkTrainParams) -> CompiledNetwork:
        import keras

        key = "\n".join([model_id, cfg.model_dump_json(), params.train.model_dump_json()])
        if key != self._key:
            keras.backend.clear_session()
            keras.utils.set_random_seed(params.train.seed)
            net = compile_network(params, model_id, cfg)
            net.model.optimizer.build(net.model.trainable_variables)
            self._model_init = [np.array(v.numpy()) for v in net.model.variables]
            self._opt_init = [np.array(v.numpy()) for v in net.model.optimizer.variables]
            self._key, self._net = key, net
        else:
            log.info("%s: reusing the compiled network, reset to its initial state", model_id)
            for var, value in zip(self._net.model.variables, self._model_init, strict=True):
                var.assign(value)
            for var, value in zip(self._net.model.optimizer.variables, self._opt_init, strict=True):
                var.assign(value)
        keras.utils.set_random_seed(params.train.seed)
        return self._net
