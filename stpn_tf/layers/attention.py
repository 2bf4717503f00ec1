"""Class-agnostic attention module of STPN (Nguyen et al., CVPR 2018, section 3.1).

Shared by STPN and the background-modeling model (Nguyen et al., ICCV 2019, the "Omega" module of section 3.1).
"""

import keras
import tensorflow as tf

from stpn_tf.layers import initializers
from stpn_tf.layers import masking


@keras.saving.register_keras_serializable(package="stpn_tf")
class ClassAgnosticAttention(keras.layers.Layer):
  """STPN section 3.1: lambda_t = sigmoid(FC_2(ReLU(FC_1(x_t)))), one weight in [0, 1] per segment.

  The paper does not give the hidden width of FC_1; it is an argument (gin: `hidden_units`, default 256, see
  BUILD_NOTES.md "Paper notes"). Padded segments (mask 0) get attention exactly 0.

  kernel_initializer / bias_initializer name schemes of stpn_tf/layers/initializers.py (default: Keras' Dense
  defaults, Glorot-uniform kernels and zero biases).

  Input: features [B, T, D] and optionally mask [B, T]. Output: attention [B, T].
  """

  def __init__(self, hidden_units: int = 256, dropout: float = 0.0, kernel_initializer: str = "glorot_uniform",
               bias_initializer: str = "zeros", **kwargs):
    super().__init__(**kwargs)
    self.hidden_units = int(hidden_units)
    self.dropout = float(dropout)
    self.kernel_initializer = initializers.get(kernel_initializer).name
    self.bias_initializer = initializers.get(bias_initializer).name
    self._fc1 = keras.layers.Dense(self.hidden_units, activation="relu", name="fc1",
                                   kernel_initializer=initializers.kernel(self.kernel_initializer))
    self._drop = keras.layers.Dropout(self.dropout)
    self._fc2 = keras.layers.Dense(1, name="fc2", kernel_initializer=initializers.kernel(self.kernel_initializer),
                                   bias_initializer=initializers.bias(self.bias_initializer, self.hidden_units))

  def build(self, input_shape):
    feature_shape = input_shape[0] if isinstance(input_shape, (list, tuple)) and \
        isinstance(input_shape[0], (list, tuple)) else input_shape
    # fc1's bias may depend on its fan_in (the feature width), known only now.
    self._fc1.bias_initializer = initializers.bias(self.bias_initializer, int(feature_shape[-1]))
    self._fc1.build(feature_shape)
    self._fc2.build(tuple(feature_shape[:-1]) + (self.hidden_units,))

  def call(self, features, mask=None, training=None):
    h = self._drop(self._fc1(features), training=training)                  # [B, T, H]
    # The sigmoid in float32 under any mixed-precision policy (training/precision.py).
    attention = tf.sigmoid(tf.cast(tf.squeeze(self._fc2(h), axis=-1), tf.float32))   # [B, T]
    return masking.apply_mask(attention, mask)

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(hidden_units=self.hidden_units, dropout=self.dropout, kernel_initializer=self.kernel_initializer,
                  bias_initializer=self.bias_initializer)
    return config
