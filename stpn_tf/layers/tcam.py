"""Temporal class activation maps: STPN Eqs. 3-6."""

import keras
import tensorflow as tf

from stpn_tf.layers import initializers
from stpn_tf.layers import masking


@keras.saving.register_keras_serializable(package="stpn_tf")
class ClassifierTCAM(keras.layers.Layer):
  """The final FC classifier w^c of STPN, usable on pooled features and on every segment.

  On a pooled representation x_bar [B, D] it gives the class scores s^c = sum_k w^c(k) x_bar(k) (Eq. 3, first
  line). On segment features x [B, T, D] it gives the T-CAM a_t^c = sum_k w^c(k) x_t(k) (Eq. 4). Both use the
  same weights, so s^c = sum_t w_t a_t^c for the pooling weights w_t of Eq. 1 (Eq. 3, last line).
  Eqs. 3-4 have no bias; `use_bias` adds one (then the T-CAM includes it), default off. kernel_initializer /
  bias_initializer: scheme names of stpn_tf/layers/initializers.py.
  """

  def __init__(self, num_classes: int, use_bias: bool = False, kernel_initializer: str = "glorot_uniform",
               bias_initializer: str = "zeros", **kwargs):
    super().__init__(**kwargs)
    self.num_classes = int(num_classes)
    self.use_bias = bool(use_bias)
    self.kernel_initializer = initializers.get(kernel_initializer).name
    self.bias_initializer = initializers.get(bias_initializer).name

  def build(self, input_shape):
    fan_in = int(input_shape[-1])
    self.kernel = self.add_weight(name="kernel", shape=(fan_in, self.num_classes),
                                  initializer=initializers.kernel(self.kernel_initializer))
    self.bias = self.add_weight(name="bias", shape=(self.num_classes,),
                                initializer=initializers.bias(self.bias_initializer, fan_in)) \
        if self.use_bias else None

  def call(self, x):
    out = tf.tensordot(x, self.kernel, axes=[[-1], [0]])                     # [..., C]
    if self.bias is not None:
      out = out + self.bias
    return out

  def get_config(self):
    config = super().get_config()
    config.update(num_classes=self.num_classes, use_bias=self.use_bias, kernel_initializer=self.kernel_initializer,
                  bias_initializer=self.bias_initializer)
    return config


def weighted_tcam(tcam, attention, mask=None):
  """STPN Eqs. 5-6: psi_t^c = lambda_t * sigmoid(a_t^c). tcam [B, T, C], attention [B, T] -> [B, T, C]."""
  psi = attention[..., None] * tf.sigmoid(tcam)
  return masking.apply_mask(psi, mask)


@keras.saving.register_keras_serializable(package="stpn_tf")
class WeightedTCAM(keras.layers.Layer):
  """Layer form of `weighted_tcam` (STPN Eqs. 5-6). Inputs: [tcam [B, T, C], attention [B, T], mask [B, T]]."""

  def call(self, inputs):
    tcam, attention, mask = inputs
    return weighted_tcam(tcam, attention, mask)
