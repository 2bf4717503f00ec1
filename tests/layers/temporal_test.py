"""Mask-aware temporal layers (stpn_tf/layers/temporal.py): top-k pooling and temporal convolution."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from stpn_tf.layers import temporal


def _values():
  # [B=2, T=5, K=2]; video 1 has 3 real segments and huge values in its padding (must never be selected).
  v = np.array([[[1., -1.], [5., 0.], [3., 2.], [2., 8.], [4., 1.]],
                [[2., 0.], [7., 1.], [1., 3.], [100., 100.], [90., 90.]]], np.float32)
  mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.float32)
  return v, mask


def test_top_k_mean_by_hand():
  v, mask = _values()
  out = temporal.masked_top_k_mean(v, mask, 2).numpy()
  # video 0: class 0 top-2 {5, 4} -> 4.5, class 1 {8, 2} -> 5; video 1 (real rows only): {7, 2} -> 4.5, {3, 1} -> 2.
  np.testing.assert_allclose(out, [[4.5, 5.0], [4.5, 2.0]], rtol=1e-6)


def test_top_k_never_exceeds_real_segments_nor_selects_padding():
  v, mask = _values()
  out = temporal.masked_top_k_mean(v, mask, 50).numpy()          # k clipped to 5 and 3
  np.testing.assert_allclose(out, [[3.0, 2.0], [10 / 3, 4 / 3]], rtol=1e-6)
  np.testing.assert_array_equal(temporal.resolve_top_k(50, tf.constant([5.0, 3.0])).numpy(), [5, 3])


def test_fractional_top_k_uses_each_videos_real_length():
  v, mask = _values()
  np.testing.assert_array_equal(temporal.resolve_top_k(0.5, tf.constant([5.0, 3.0])).numpy(), [2, 1])
  out = temporal.masked_top_k_mean(v, mask, 0.5).numpy()
  np.testing.assert_allclose(out, [[4.5, 5.0], [7.0, 3.0]], rtol=1e-6)
  # floor(0.1 * T) is exact for products that are whole numbers in decimal; at least 1 segment.
  np.testing.assert_array_equal(temporal.resolve_top_k(0.1, tf.constant([70.0, 500.0, 5.0])).numpy(), [7, 50, 1])


def test_top_k_of_an_empty_video_is_zero():
  v = np.ones((1, 3, 2), np.float32)
  np.testing.assert_array_equal(temporal.masked_top_k_mean(v, np.zeros((1, 3), np.float32), 2).numpy(), 0.0)


def test_top_k_gradient_reaches_only_selected_segments():
  v, mask = _values()
  v = tf.constant(v)
  with tf.GradientTape() as tape:
    tape.watch(v)
    out = tf.reduce_sum(temporal.masked_top_k_mean(v, mask, 2))
  grad = tape.gradient(out, v).numpy()
  expected = np.zeros_like(grad)
  expected[0, [1, 4], 0] = 0.5
  expected[0, [3, 2], 1] = 0.5
  expected[1, [1, 0], 0] = 0.5
  expected[1, [2, 1], 1] = 0.5
  np.testing.assert_allclose(grad, expected)


@pytest.mark.parametrize("k", [0, -1, 1.5, 0.0])
def test_bad_k_is_rejected(k):
  with pytest.raises(ValueError):
    temporal.resolve_top_k(k, tf.constant([3.0]))


def test_temporal_conv_does_not_read_padding():
  rng = np.random.default_rng(0)
  conv = temporal.MaskedTemporalConv1D(4, 3, activation="leaky_relu")
  video = rng.normal(size=(1, 6, 5)).astype(np.float32)
  alone = conv([video, np.ones((1, 6), np.float32)]).numpy()
  padded = np.concatenate([video, 50 * np.ones((1, 4, 5), np.float32)], axis=1)   # garbage in the padding
  mask = np.array([[1] * 6 + [0] * 4], np.float32)
  out = conv([padded, mask]).numpy()
  np.testing.assert_allclose(out[:, :6], alone, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(out[:, 6:], 0.0)
  # Without the mask the last real segment would see the garbage: the test can fail.
  leaky = conv([padded, np.ones((1, 10), np.float32)]).numpy()
  assert not np.allclose(leaky[:, 5], alone[:, 5], atol=1e-3)


def test_temporal_conv_is_a_kernel_3_convolution():
  conv = temporal.MaskedTemporalConv1D(1, 3)
  x = np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1)
  conv([x, np.ones((1, 4), np.float32)])
  conv.set_weights([np.array([1.0, 10.0, 100.0], np.float32).reshape(3, 1, 1), np.zeros(1, np.float32)])
  out = conv([x, np.ones((1, 4), np.float32)]).numpy()[0, :, 0]
  # 'same' padding: y_t = 1 * x_{t-1} + 10 * x_t + 100 * x_{t+1}.
  np.testing.assert_allclose(out, [10 + 200, 1 + 20 + 300, 2 + 30 + 400, 3 + 40])


def test_layers_round_trip_through_config():
  conv = temporal.MaskedTemporalConv1D(3, 3, activation="relu", negative_slope=0.1)
  clone = temporal.MaskedTemporalConv1D.from_config(conv.get_config())
  assert clone.filters == 3 and clone.activation == "relu" and clone.negative_slope == 0.1
  pool = keras.layers.deserialize(keras.layers.serialize(temporal.MaskedTopKPooling(0.25)))
  assert pool.k == 0.25


def test_feature_centering_uses_real_segments_only():
  x = np.array([[[1., 2.], [3., 4.], [100., 100.]], [[5., 6.], [0., 0.], [0., 0.]]], np.float32)
  mask = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
  layer = temporal.MaskedFeatureCentering(momentum=0.9)
  out = layer([x, mask], training=True).numpy()
  mean = np.array([3., 4.])                          # rows (1, 2), (3, 4), (5, 6); the 100s are padding
  np.testing.assert_allclose(out[0, :2], x[0, :2] - mean)
  np.testing.assert_allclose(out[1, 0], x[1, 0] - mean)
  np.testing.assert_array_equal(out[0, 2], 0.0)
  np.testing.assert_array_equal(out[1, 1:], 0.0)
  np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-6)     # first call: the batch mean itself
  layer([x[:1], mask[:1]], training=True)                                      # second call: mean (2, 3)
  np.testing.assert_allclose(layer.moving_mean.numpy(), (mean + [2., 3.]) / 2, rtol=1e-6)
  # Inference subtracts the running mean, whatever the batch.
  out = layer([x, mask], training=False).numpy()
  np.testing.assert_allclose(out[0, 0], x[0, 0] - [2.5, 3.5], rtol=1e-6)
  clone = temporal.MaskedFeatureCentering.from_config(layer.get_config())
  assert clone.momentum == 0.9
