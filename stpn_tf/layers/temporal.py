"""Mask-aware temporal layers: a temporal convolution that never reads padding, and top-k temporal pooling.

Written for HAM-Net (Islam, Long, Radke, AAAI 2021), reusable by any model that convolves over time or pools the
k highest scores of a sequence (W-TALC style top-k MIL pooling).
"""

from typing import Optional, Union

import keras
import tensorflow as tf

from stpn_tf.layers import masking

# Added to padded scores before sorting, so they rank below every real score; never selected (see below).
_PAD_SCORE = -1e9


def resolve_top_k(k: Union[int, float], num_valid):
  """Number of segments k_b pooled for each video, from an absolute k or a fraction of the video's length.

  Args:
    k: an int >= 1 (absolute, HAM-Net's "k = 50" on THUMOS14) or a float in (0, 1) (fraction of the number of real
      segments: k_b = floor(k * T_b), as the authors' code computes k = T // r).
    num_valid: [B] number of real segments T_b of each video (float or int tensor).

  Returns:
    int32 [B]: k_b = clip(k or floor(k * T_b), 1, T_b); 0 only for a video without any real segment.
  """
  num_valid = tf.cast(num_valid, tf.float32)
  if isinstance(k, float) and not float(k).is_integer():
    if not 0.0 < k < 1.0:
      raise ValueError(f"a fractional top-k must lie in (0, 1), got {k}")
    # The small epsilon keeps exact products such as 0.1 * 70 from flooring to 6 by rounding.
    kb = tf.floor(k * num_valid + 1e-4)
  else:
    if int(k) < 1:
      raise ValueError(f"top-k must be >= 1, got {k}")
    kb = tf.fill(tf.shape(num_valid), float(int(k)))
  kb = tf.minimum(tf.maximum(kb, 1.0), num_valid)
  return tf.cast(kb, tf.int32)


def masked_top_k_mean(values, mask, k: Union[int, float]):
  """HAM-Net Eq. 1 (and Eq. 5): v_j = max over subsets l of size k of (1/k) sum_{i in l} s_i(j), per class j.

  The maximizing subset is the k largest values of each column, so v_j is the mean of the column's top k. Padded
  positions (mask 0) are never selected and k never exceeds the number of real segments T_b (k_b of
  `resolve_top_k`). A video without real segments pools to 0.

  Args:
    values: [B, T, K] float scores (e.g. the CAS s_i(j)).
    mask: [B, T], 1 for real segments, 0 for padding; None means every segment is real.
    k: int (absolute) or float in (0, 1) (fraction of T_b), see `resolve_top_k`.

  Returns:
    [B, K] pooled scores. Gradients flow to the selected entries only (each gets 1 / k_b).
  """
  if mask is None:
    mask = masking.ones_mask(values)
  mask = tf.cast(mask, values.dtype)
  kb = resolve_top_k(k, tf.reduce_sum(mask, axis=1))                         # [B]
  shifted = values + (1.0 - mask[..., None]) * _PAD_SCORE                    # padding ranks last
  ranked = tf.sort(shifted, axis=1, direction="DESCENDING")                  # [B, T, K]
  positions = tf.range(tf.shape(values)[1])[None, :]                         # [1, T]
  selected = tf.cast(positions < kb[:, None], values.dtype)[..., None]       # [B, T, 1]: the first k_b ranks
  total = tf.reduce_sum(ranked * selected, axis=1)                           # [B, K]
  return total / tf.maximum(tf.cast(kb, values.dtype), 1.0)[:, None]


@keras.saving.register_keras_serializable(package="stpn_tf")
class MaskedTopKPooling(keras.layers.Layer):
  """Layer form of `masked_top_k_mean`. Inputs: [values [B, T, K], mask [B, T]]. Output: [B, K]."""

  def __init__(self, k: Union[int, float] = 8, **kwargs):
    super().__init__(**kwargs)
    resolve_top_k(k, tf.ones([1]))    # validates k
    self.k = k

  def call(self, inputs):
    values, mask = inputs
    return masked_top_k_mean(values, mask, self.k)

  def get_config(self):
    config = super().get_config()
    config.update(k=self.k)
    return config


@keras.saving.register_keras_serializable(package="stpn_tf")
class ApplyMask(keras.layers.Layer):
  """Zeroes padded rows: inputs [values [B, T, ...], mask [B, T]] -> values * mask. With squeeze_last, a trailing
  axis of size 1 is dropped first ([B, T, 1] -> [B, T])."""

  def __init__(self, squeeze_last: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.squeeze_last = bool(squeeze_last)

  def call(self, inputs):
    values, mask = inputs
    if self.squeeze_last:
      values = tf.squeeze(values, axis=-1)
    return masking.apply_mask(values, mask)

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(squeeze_last=self.squeeze_last)
    return config


@keras.saving.register_keras_serializable(package="stpn_tf")
class MaskedFeatureCentering(keras.layers.Layer):
  """Subtracts the mean feature vector (over real segments), BatchNormalization-style but without any scaling.

  Training: x - mu_batch, where mu_batch [D] is the mean over the batch's real segments (padding excluded); a running
  mean of mu_batch is kept: a plain average over the first 1 / (1 - momentum) training calls, then an exponential
  moving average with `momentum` (so it is unbiased from the first step, unlike an EMA started at 0).
  Inference: x - running mean. Padded rows stay 0. The statistics get no gradient. At inference this is a fixed
  shift of the inputs, which an affine first layer can absorb in its bias: it changes how the model trains
  (non-negative inputs make Adam's first-layer steps coherent), not what it can represent.

  Inputs: [features [B, T, D], mask [B, T]]. Output: [B, T, D].
  """

  def __init__(self, momentum: float = 0.99, **kwargs):
    super().__init__(**kwargs)
    self.momentum = float(momentum)

  def build(self, input_shape):
    feature_shape = input_shape[0]
    self.moving_mean = self.add_weight(name="moving_mean", shape=(int(feature_shape[-1]),), initializer="zeros",
                                       trainable=False, aggregation="mean")
    self.count = self.add_weight(name="count", shape=(), initializer="zeros", trainable=False,
                                 aggregation="only_first_replica")

  def call(self, inputs, training=None):
    features, mask = inputs
    mask = tf.cast(mask, features.dtype)
    if training:
      total = tf.maximum(tf.reduce_sum(mask), 1.0)
      mean = tf.stop_gradient(tf.einsum("btd,bt->d", features, mask) / total)            # [D]
      self.count.assign_add(1.0)
      rate = tf.maximum(1.0 / self.count, 1.0 - self.momentum)
      self.moving_mean.assign(self.moving_mean + rate * (mean - self.moving_mean))
    else:
      mean = tf.convert_to_tensor(self.moving_mean)
    return (features - mean) * mask[..., None]

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(momentum=self.momentum)
    return config


@keras.saving.register_keras_serializable(package="stpn_tf")
class MaskedTemporalConv1D(keras.layers.Layer):
  """A 'same'-padded temporal convolution over [B, T, D] that never lets padded segments leak into real ones.

  Padded rows (mask 0) are zeroed before the convolution, so a real segment next to padding sees exactly the zeros
  that 'same' padding puts beyond the end of an unpadded video: the outputs on the real rows of a padded batch equal
  those of the video alone. The output's padded rows are zeroed too (they would otherwise hold bias and edge terms).

  Inputs: [features [B, T, D], mask [B, T]] (mask may be None). Output: [B, T, filters].
  """

  def __init__(self, filters: int, kernel_size: int = 3, activation: Optional[str] = None,
               negative_slope: float = 0.2, kernel_initializer="glorot_uniform", bias_initializer="zeros",
               **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.kernel_size = int(kernel_size)
    self.activation = activation
    self.negative_slope = float(negative_slope)
    self.kernel_initializer = kernel_initializer
    self.bias_initializer = bias_initializer
    if activation not in (None, "linear", "relu", "leaky_relu", "sigmoid", "tanh"):
      raise ValueError(f"unsupported activation {activation!r}")
    self._conv = keras.layers.Conv1D(self.filters, self.kernel_size, padding="same",
                                     kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                                     name="conv")

  def build(self, input_shape):
    feature_shape = input_shape[0] if isinstance(input_shape, (list, tuple)) and \
        isinstance(input_shape[0], (list, tuple)) else input_shape
    self._conv.build(feature_shape)

  def call(self, inputs):
    features, mask = inputs if isinstance(inputs, (list, tuple)) else (inputs, None)
    out = self._conv(masking.apply_mask(features, mask))
    if self.activation == "relu":
      out = tf.nn.relu(out)
    elif self.activation == "leaky_relu":
      out = tf.nn.leaky_relu(out, alpha=self.negative_slope)
    elif self.activation == "sigmoid":   # in float32 under any mixed-precision policy (training/precision.py)
      out = tf.sigmoid(tf.cast(out, tf.float32))
    elif self.activation == "tanh":
      out = tf.tanh(out)
    return masking.apply_mask(out, mask)

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, kernel_size=self.kernel_size, activation=self.activation,
                  negative_slope=self.negative_slope,
                  kernel_initializer=keras.initializers.serialize(keras.initializers.get(self.kernel_initializer)),
                  bias_initializer=keras.initializers.serialize(keras.initializers.get(self.bias_initializer)))
    return config
