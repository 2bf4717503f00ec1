"""STPN (stpn_tf/models/stpn.py): losses by hand, ablations, serialization."""

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from stpn_tf.models import stpn


def test_classification_loss_is_summed_sigmoid_cross_entropy():
  logits = np.array([[0.0, 2.0]], np.float32)
  labels = np.array([[1.0, 0.0]], np.float32)
  # -log(sigmoid(0)) - log(1 - sigmoid(2)) = log 2 + log(1 + e^2)
  expected = np.log(2.0) + np.log(1 + np.exp(2.0))
  np.testing.assert_allclose(stpn.classification_loss(logits, labels).numpy(), [expected], rtol=1e-6)


def test_sparsity_loss_is_mean_l1_over_real_segments():
  att = np.array([[0.2, 0.4, 0.9], [1.0, 0.0, 0.5]], np.float32)
  mask = np.array([[1, 1, 0], [1, 1, 1]], np.float32)
  np.testing.assert_allclose(stpn.sparsity_loss(att, mask).numpy(), [0.3, 0.5], rtol=1e-6)


def test_eq2_total():
  outputs = {"logits": tf.constant([[0.0]]), "attention": tf.constant([[0.5, 0.25]])}
  losses = stpn.stpn_loss(outputs, tf.constant([[1.0]]), tf.constant([[1.0, 1.0]]), beta=0.1)
  np.testing.assert_allclose(losses["total"].numpy(), [np.log(2) + 0.1 * 0.375], rtol=1e-6)


def _batch(dim=8, classes=3, t=6):
  rng = np.random.default_rng(0)
  mask = np.ones((2, t), np.float32)
  mask[1, 4:] = 0
  return {"rgb": rng.random((2, t, dim), np.float32), "flow": rng.random((2, t, dim), np.float32),
          "mask": mask, "labels": np.eye(classes, dtype=np.float32)[[0, 2]]}


@pytest.mark.parametrize("kwargs", [dict(), dict(use_attention=False), dict(sparsity_weight=0.0),
                                    dict(modalities=("rgb",)), dict(modalities=("flow",))])
def test_every_ablation_builds_and_trains_a_step(kwargs):
  task = stpn.STPN(hidden_units=4, **kwargs)
  models = task.build_models(3, {"rgb": 8, "flow": 8})
  assert set(models) == set(kwargs.get("modalities", ("rgb", "flow")))
  batch = _batch()
  for name, model in models.items():
    opt = keras.optimizers.Adam(1e-2)
    before = [v.numpy().copy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
      out = model(task.network_inputs(name, batch), training=True)
      loss = tf.reduce_mean(task.losses(name, out, batch)["total"])
    opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    assert any(not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    assert out["tcam"].shape == (2, 6, 3) and out["attention"].shape == (2, 6)
    np.testing.assert_array_equal(out["attention"].numpy()[1, 4:], 0.0)   # padding gets no attention
    if not kwargs.get("use_attention", True):
      np.testing.assert_array_equal(out["attention"].numpy(), batch["mask"])


def test_no_attention_has_no_sparsity_term():
  assert stpn.STPN(use_attention=False, sparsity_weight=0.5).sparsity_weight == 0.0


def test_bad_modality_is_rejected():
  with pytest.raises(ValueError, match="modalities"):
    stpn.STPN(modalities=("depth",))


def test_model_config_round_trip_gives_same_outputs():
  model = stpn.build_stream_model(8, 3, hidden_units=4)
  clone = keras.Model.from_config(model.get_config())
  clone.set_weights(model.get_weights())
  batch = _batch()
  inputs = {"features": batch["rgb"], "mask": batch["mask"]}
  for key in ("logits", "attention", "tcam"):
    np.testing.assert_allclose(model(inputs)[key].numpy(), clone(inputs)[key].numpy(), atol=1e-6)


def test_gin_binds_stpn():
  gin.parse_config(["STPN.sparsity_weight = 0.5", "STPN.modalities = ('flow',)"])
  task = stpn.STPN()
  assert task.sparsity_weight == 0.5 and task.modalities == ("flow",)
