"""Reduced precision (stpn_tf/training/precision.py): every model trains under every policy with finite float32
losses, the float32 islands stay float32, float16 scales the loss, and the process-wide policy is restored."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from stpn_tf.data import pipeline
from stpn_tf.data import schema
from stpn_tf.models import aumn
from stpn_tf.models import bgm
from stpn_tf.models import hamnet
from stpn_tf.models import stpn
from stpn_tf.training import precision
from stpn_tf.training import trainer
from tests import testing_utils

TASKS = {
    "stpn": lambda: stpn.STPN(hidden_units=8),
    "bgm": lambda: bgm.BGM(hidden_units=8),
    "aumn": lambda: aumn.AUMN(embedding_dim=16, num_templates=3, key_reduction=4, value_bottleneck=8),
    "hamnet": lambda: hamnet.HAMNet(classifier_units=(16, 16), attention_units=8, top_k=0.5, dropout=0.0),
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("data")
  testing_utils.write_random_dataset(path, num_train=6, lengths=(6, 20))
  return str(path)


@pytest.mark.parametrize("policy", precision.PRECISIONS)
@pytest.mark.parametrize("model", sorted(TASKS))
def test_every_model_trains_under_every_policy(data_dir, model, policy):
  before = keras.mixed_precision.global_policy().name
  manifest = schema.read_manifest(str(data_dir))
  task = TASKS[model]()
  tr = trainer.Trainer(task, manifest, tf.distribute.get_strategy(), 4, jit_compile=(model in ("stpn", "hamnet")),
                       precision=policy)
  assert keras.mixed_precision.global_policy().name == before       # restored once the models are built
  sampler = None if model != "bgm" else pipeline.sampling.AllSegmentsSampler()
  ds = pipeline.make_train_dataset(str(data_dir), batch_size=4, streams=task.streams, seed=0, sampler=sampler)
  it = iter(ds)
  weights = {n: [v.numpy() for v in m.trainable_variables] for n, m in tr.models.items()}
  logs = tr.train_steps(it, 3)
  assert logs and all(np.isfinite(v) for v in logs.values()), logs
  for name, m in tr.models.items():
    assert all(v.dtype == "float32" for v in m.variables)             # variables stay float32
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(weights[name], m.trainable_variables))
    compute = {layer.dtype_policy.compute_dtype for layer in m.layers if layer.weights}
    assert compute == {"float32" if policy == "float32" else policy.split("_")[1]}, compute
    batch = next(it)
    out = m(task.network_inputs(name, batch), training=False)
    assert out["attention"].dtype == tf.float32                         # the sigmoid's float32 island
  if policy == "mixed_float16":
    assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in tr.optimizers.values())


def test_policy_is_restored_when_building_fails(data_dir):
  keras.mixed_precision.set_global_policy("float32")
  manifest = schema.read_manifest(str(data_dir))

  class Broken:
    def build_models(self, num_classes, feature_dims):
      assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
      raise RuntimeError("boom")

  with pytest.raises(RuntimeError, match="boom"):
    trainer.Trainer(Broken(), manifest, tf.distribute.get_strategy(), 2, precision="mixed_bfloat16")
  assert keras.mixed_precision.global_policy().name == "float32"
  with pytest.raises(ValueError, match="train_eval.precision"):
    trainer.Trainer(Broken(), manifest, tf.distribute.get_strategy(), 2, precision="bfloat16")


def test_train_eval_in_bfloat16_evaluates_and_restores_the_policy(data_dir, tmp_path):
  import gin
  from stpn_tf import config
  gin.clear_config()
  try:
    config.parse_gin(["stpn.gin"], ["STPN.hidden_units = 8", "train_eval.batch_size = 4",
                                    "train_eval.precision = 'mixed_bfloat16'", "train_eval.eval_every = 0",
                                    "UniformPerturbedSampler.num_segments = 16"], finalize=False)
    results = trainer.train_eval(str(tmp_path / "run"), str(data_dir), num_steps=3)
  finally:
    gin.clear_config()
  assert keras.mixed_precision.global_policy().name == "float32"
  assert results["step"] == 3 and np.isfinite(results["classification_mAP"])
  # Variables are float32: the run's checkpoint restores into float32 models (evaluation, export).
  from stpn_tf import runs
  try:
    _, models = runs.restore_models(str(tmp_path / "run"), str(data_dir))
  finally:
    gin.clear_config()
  assert all(v.dtype == "float32" for m in models.values() for v in m.variables)
  assert all(layer.dtype_policy.compute_dtype == "float32" for m in models.values() for layer in m.layers)
