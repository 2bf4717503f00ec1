"""Bucketed padding for BGM (data/sampling.py AllSegmentsSampler): a video padded to its bucket length gives
exactly its unpadded losses and gradients, so XLA can compile a few shapes instead of one per length."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from stpn_tf import config
from stpn_tf.data import pipeline
from stpn_tf.data import sampling
from stpn_tf.models import bgm
from tests import testing_utils


def _losses_and_grads(task, model, batch, jit):
  def step(batch):
    with tf.GradientTape() as tape:
      losses = task.losses("rgb", model(task.network_inputs("rgb", batch), training=True), batch)
      total = tf.reduce_sum(losses["total"])
    return losses, tape.gradient(total, model.trainable_variables)
  return tf.function(step, jit_compile=jit)(batch)


@pytest.mark.parametrize("jit", [False, True])
def test_bucket_padded_video_gives_its_unpadded_losses_and_gradients(tmp_path, jit):
  testing_utils.write_random_dataset(tmp_path, num_train=3, lengths=(9, 30), dim=8)
  # Every loss term on (Eq. 11 with a sparsity term too), sigma wide enough that smoothing reaches the padding.
  task = bgm.BGM(modalities=("rgb",), hidden_units=6, guide_sigma=2.0, sparsity_weight=0.1)
  model = task.build_models(3, {"rgb": 8})["rgb"]
  exact = pipeline.make_train_dataset(str(tmp_path), batch_size=1, streams=("rgb",), seed=0, deterministic=True,
                                      repeat=False, sampler=sampling.AllSegmentsSampler(bucket_ratio=None))
  bucketed = pipeline.make_train_dataset(str(tmp_path), batch_size=1, streams=("rgb",), seed=0,
                                         deterministic=True, repeat=False,
                                         sampler=sampling.AllSegmentsSampler(bucket_ratio=1.5, min_bucket=16))
  checked = 0
  for a, b in zip(exact, bucketed):
    a = {k: v for k, v in a.items() if k != "video_id"}
    b = {k: v for k, v in b.items() if k != "video_id"}
    length = a["rgb"].shape[1]
    assert b["rgb"].shape[1] > length or b["rgb"].shape[1] == 16 == length   # padded to a bucket
    assert b["rgb"].shape[1] in sampling.AllSegmentsSampler(bucket_ratio=1.5, min_bucket=16).buckets
    np.testing.assert_array_equal(b["rgb"][:, :length], a["rgb"])
    np.testing.assert_array_equal(b["mask"].numpy().sum(), length)
    loss_a, grad_a = _losses_and_grads(task, model, a, jit)
    loss_b, grad_b = _losses_and_grads(task, model, b, jit)
    for key in loss_a:
      np.testing.assert_allclose(loss_b[key].numpy(), loss_a[key].numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    for v, ga, gb in zip(model.trainable_variables, grad_a, grad_b):
      np.testing.assert_allclose(gb.numpy(), ga.numpy(), rtol=1e-4, atol=1e-6, err_msg=v.path)
    assert any(float(tf.reduce_max(tf.abs(g))) > 0 for g in grad_a)
    checked += 1
  assert checked == 3


def test_bgm_gin_buckets():
  gin.clear_config()
  try:
    config.parse_gin(["bgm.gin"], [], finalize=False)
    sampler = gin.query_parameter("make_train_dataset.sampler").scoped_configurable_fn()
    assert sampler.buckets, "bgm.gin should pad to bucket lengths"
  finally:
    gin.clear_config()
