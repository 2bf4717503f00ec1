"""Attention-weighted temporal pooling (STPN Eq. 1), mask-aware."""

import keras
import tensorflow as tf

from stpn_tf.layers import masking

NORMALIZATIONS = ("none", "length", "attention")


def pooling_weights(attention, mask=None, normalization: str = "length"):
  """Per-segment weights w_t with pooled = sum_t w_t x_t (STPN Eq. 1 and its normalized variants).

  Args:
    attention: lambda [B, T].
    mask: [B, T], 1 for real segments, 0 for padding (None = all real).
    normalization: "none": w_t = lambda_t, Eq. 1 exactly as printed (the pooled scale grows with T);
      "length": w_t = lambda_t / T_valid, the "temporal average pooling" the text describes (and the 1/T of
      Nguyen et al. 2019 Eq. 1); "attention": w_t = lambda_t / sum_t lambda_t (a weighted mean).
      See BUILD_NOTES.md "Paper notes" for the default.

  Returns:
    weights [B, T]; padded positions are exactly 0.
  """
  if normalization not in NORMALIZATIONS:
    raise ValueError(f"pooling normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
  if mask is None:
    mask = masking.ones_mask(attention)
  mask = tf.cast(mask, attention.dtype)
  weights = attention * mask
  if normalization == "length":
    weights = weights / tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
  elif normalization == "attention":
    weights = weights / tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1e-8)
  return weights


@keras.saving.register_keras_serializable(package="stpn_tf")
class AttentionPooling(keras.layers.Layer):
  """STPN Eq. 1: x_bar = sum_t w_t x_t with w from `pooling_weights` (attention-weighted temporal pooling).

  Inputs: [values [B, T, K], attention [B, T], mask [B, T]]. Output: pooled [B, K].
  Because the pooling is linear, pooling T-CAMs instead of features gives the class scores of Eq. 3.
  """

  def __init__(self, normalization: str = "length", **kwargs):
    kwargs.setdefault("dtype", "float32")   # the normalizations in float32 under any mixed-precision policy
    super().__init__(**kwargs)
    if normalization not in NORMALIZATIONS:
      raise ValueError(f"pooling normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    self.normalization = normalization

  def call(self, inputs):
    values, attention, mask = inputs
    weights = pooling_weights(attention, mask, self.normalization)           # [B, T]
    return tf.einsum("bt,btk->bk", weights, values)                           # [B, K]

  def get_config(self):
    config = super().get_config()
    config.update(normalization=self.normalization)
    return config
