"""The shared layer library (stpn_tf/layers): equations against hand-computed values."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from stpn_tf.layers import attention
from stpn_tf.layers import pooling
from stpn_tf.layers import tcam


def test_attention_is_fc_relu_fc_sigmoid_and_masked():
  layer = attention.ClassAgnosticAttention(hidden_units=2)
  x = np.array([[[1.0, -1.0], [2.0, 0.5], [0.0, 0.0]]], np.float32)      # [1, 3, 2]
  layer.build(x.shape)
  w1 = np.array([[1.0, -1.0], [0.5, 2.0]], np.float32)
  b1 = np.array([0.0, 0.1], np.float32)
  w2 = np.array([[2.0], [-1.0]], np.float32)
  b2 = np.array([0.5], np.float32)
  layer.set_weights([w1, b1, w2, b2])
  out = layer(x, mask=np.array([[1, 1, 0]], np.float32)).numpy()
  h = np.maximum(x[0] @ w1 + b1, 0)
  expected = 1 / (1 + np.exp(-(h @ w2 + b2)[:, 0]))
  expected[2] = 0.0                                                         # padded
  np.testing.assert_allclose(out[0], expected, rtol=1e-6)


@pytest.mark.parametrize("normalization, expected", [
    ("none", [0.5 * 1 + 1.0 * 3]),                # sum_t lambda_t x_t  (Eq. 1 as printed)
    ("length", [(0.5 * 1 + 1.0 * 3) / 2]),         # divided by the 2 real segments
    ("attention", [(0.5 * 1 + 1.0 * 3) / 1.5]),    # divided by sum lambda
])
def test_pooling_eq1_normalizations_ignore_padding(normalization, expected):
  values = np.array([[[1.0], [3.0], [100.0]]], np.float32)   # the padded row holds a large value
  lam = np.array([[0.5, 1.0, 0.9]], np.float32)
  mask = np.array([[1.0, 1.0, 0.0]], np.float32)
  out = pooling.AttentionPooling(normalization)([values, lam, mask]).numpy()
  np.testing.assert_allclose(out[0], expected, rtol=1e-6)


def test_unknown_normalization_is_rejected():
  with pytest.raises(ValueError, match="normalization"):
    pooling.AttentionPooling("softmax")


@pytest.mark.parametrize("normalization", pooling.NORMALIZATIONS)
def test_eq3_class_score_equals_weighted_sum_of_tcam(normalization):
  rng = np.random.default_rng(0)
  x = rng.random((3, 17, 32)).astype(np.float32)
  lam = rng.random((3, 17)).astype(np.float32)
  mask = np.ones((3, 17), np.float32)
  mask[1, 11:] = 0
  classifier = tcam.ClassifierTCAM(5)
  pooled = pooling.AttentionPooling(normalization)([x, lam, mask])
  scores = classifier(pooled).numpy()                                       # s^c from x_bar (Eq. 3, line 1)
  cam = classifier(x).numpy()                                               # a_t^c (Eq. 4)
  weights = pooling.pooling_weights(lam, mask, normalization).numpy()
  np.testing.assert_allclose(scores, np.einsum("bt,btc->bc", weights, cam), atol=1e-5)   # Eq. 3, last line
  np.testing.assert_allclose(cam, x @ classifier.kernel.numpy(), atol=1e-5)              # Eq. 4


def test_weighted_tcam_eqs5_6():
  cam = np.array([[[0.0, 2.0], [-1.0, 1.0]]], np.float32)
  lam = np.array([[0.5, 1.0]], np.float32)
  out = tcam.weighted_tcam(cam, lam, np.array([[1.0, 1.0]], np.float32)).numpy()
  sig = lambda v: 1 / (1 + np.exp(-v))
  np.testing.assert_allclose(out[0], [[0.5 * 0.5, 0.5 * sig(2)], [sig(-1), sig(1)]], rtol=1e-6)


@pytest.mark.parametrize("layer", [attention.ClassAgnosticAttention(hidden_units=7, dropout=0.25),
                                   pooling.AttentionPooling("attention"), tcam.ClassifierTCAM(4, use_bias=True)])
def test_layers_serialize(layer):
  clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
  assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
