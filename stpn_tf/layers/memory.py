"""A learned key-value memory of action-unit templates: AUMN (Luo et al., CVPR 2021, section 3.2).

The memory bank M [K, F] holds K templates of dimension F. Two encoders turn it into keys and values:
  keys    K^M = EncK(M)   [K, F/m]     one FC                                          Eq. 2
  values  V^M = EncV(M)   [K, C*F]     FC -> bottleneck -> FC, one C x F classifier    Eq. 3
Reading the memory with segment queries Q [T, F/m]:
  similarity    S = sigmoid(Q (K^M)^T / sqrt(F/m))      [T, K]                         Eq. 5
  classifiers   V^O = S V^M                             [T, C*F] -> W^cls(t) [F, C]    Eq. 6
  CAS           C(t, :) = X^s(t) W^cls(t)               [T, C]                         Eq. 15
and the memory-updating losses of section 3.2: diversity (Eq. 10) and homogeneity (Eqs. 11-12).

Eq. 6 is never materialized: V^O would be [B, T, C*F] (32 x 400 x 200 x 512 floats = 5 GB for ActivityNet 1.3).
Because C(t, c) = sum_f X^s(t, f) sum_k S(t, k) V^M(k, f, c) = sum_k S(t, k) [X^s(t) V^M(k)](c), the features are
applied to each template's classifier first ([B, T, K, C]) and the results mixed with the similarities.

Reshape convention of Eq. 6 ("we reshape V^O into ... W^cls(t) in R^{F x C}"): the C*F vector is read row-major
as [F, C], i.e. entry (f, c) is element f * C + c. The paper does not say; any fixed order is equivalent because
EncV is learned.
"""

import math

import keras
import tensorflow as tf

from stpn_tf.layers import initializers
from stpn_tf.layers import masking


def scaled_similarity(queries, keys, mask=None):
  """AUMN Eq. 5: S = sigmoid(Q K^T / sqrt(d)), d = the key dimension F/m.

  Args:
    queries: Q [B, T, d].
    keys: K^M [K, d].
    mask: [B, T] (1 = real segment) or None.

  Returns:
    S [B, T, K] in (0, 1); rows of padded segments are exactly 0.
  """
  scale = 1.0 / math.sqrt(int(keys.shape[-1]))
  # The sigmoid in float32 under any mixed-precision policy (training/precision.py).
  similarity = tf.sigmoid(tf.cast(tf.einsum("btd,kd->btk", queries, keys) * scale, tf.float32))
  return masking.apply_mask(similarity, mask)


def segment_class_scores(features, values, similarity):
  """AUMN Eqs. 6 and 15 without the [B, T, C*F] tensor: C(t, :) = X^s(t) W^cls(t), W^cls(t) = sum_k S(t,k) V^M(k).

  Args:
    features: X^s [B, T, F].
    values: V^M reshaped to per-template classifiers [K, F, C].
    similarity: S [B, T, K].

  Returns:
    The class activation sequence C [B, T, C] (Eq. 15).
  """
  per_template = tf.einsum("btf,kfc->btkc", features, values)                # [B, T, K, C]
  return tf.einsum("btk,btkc->btc", tf.cast(similarity, per_template.dtype), per_template)   # [B, T, C]


def diversity_loss(memory):
  """AUMN Eq. 10: L_d = ||M M^T - I||_F for the memory M [K, F]. Returns a scalar."""
  gram = tf.matmul(memory, memory, transpose_b=True)                          # [K, K]
  return tf.norm(gram - tf.eye(tf.shape(memory)[0], dtype=memory.dtype), ord="fro", axis=(0, 1))


def template_probabilities(similarity, mask=None):
  """AUMN Eq. 11: p^O = softmax_k(sum_t S(t, k)), summing real segments only. S [B, T, K] -> [B, K]."""
  return tf.nn.softmax(tf.reduce_sum(masking.apply_mask(similarity, mask), axis=1), axis=-1)


def homogeneity_loss(similarity, mask=None):
  """AUMN Eq. 12: L_h = || (1/B) sum_i p^O_i ||_2 (Euclidean norm, not squared), p^O from Eq. 11.

  The loss is a property of the mini-batch, not of one video: it is smallest (1/sqrt(K)) when the templates are on
  average used uniformly. Under a distribution strategy each replica computes it over its own share of the batch.

  Args:
    similarity: S [B, T, K].
    mask: [B, T] or None.

  Returns:
    A scalar.
  """
  return tf.norm(tf.reduce_mean(template_probabilities(similarity, mask), axis=0))


@keras.saving.register_keras_serializable(package="stpn_tf")
class ActionUnitMemory(keras.layers.Layer):
  """AUMN memory bank with its key and value encoders, read by segment queries (Eqs. 2, 3, 5, 6, 10, 15).

  Args:
    num_templates: K (7 in the paper, section 4.1).
    template_dim: F, the template (and segment feature) dimension (512 in the paper).
    key_dim: F/m, output width of EncK (and of the caller's query encoder EncQ); m is not given by the paper.
    value_bottleneck: width of EncV's hidden layer (not given by the paper).
    num_classes: C.
    value_activation: activation of EncV's hidden layer ("an MLP network"; the paper names none; ReLU by default).
    memory_stddev: templates are initialized N(0, memory_stddev^2); None gives 1/sqrt(F), i.e. rows of about
      unit norm and nearly orthogonal, where the diversity loss of Eq. 10 is small.
    kernel_initializer, bias_initializer: EncK's and EncV's schemes (stpn_tf/layers/initializers.py).

  Call inputs: [queries Q [B, T, F/m], features X^s [B, T, F], mask [B, T]].
  Call outputs: (similarity S [B, T, K] (Eq. 5), cas C [B, T, C] (Eq. 15), diversity [B]: L_d of Eq. 10 repeated
  for every video, so that a per-example loss whose batch mean is taken counts it exactly once).
  """

  def __init__(self, num_templates: int, template_dim: int, key_dim: int, value_bottleneck: int, num_classes: int,
               value_activation: str = "relu", memory_stddev=None, kernel_initializer: str = "glorot_uniform",
               bias_initializer: str = "zeros", **kwargs):
    super().__init__(**kwargs)
    self.num_templates = int(num_templates)
    self.template_dim = int(template_dim)
    self.key_dim = int(key_dim)
    self.value_bottleneck = int(value_bottleneck)
    self.num_classes = int(num_classes)
    self.value_activation = value_activation
    self.memory_stddev = None if memory_stddev is None else float(memory_stddev)
    if min(self.num_templates, self.template_dim, self.key_dim, self.value_bottleneck, self.num_classes) < 1:
      raise ValueError("ActionUnitMemory sizes must be positive")
    self.kernel_initializer = initializers.get(kernel_initializer).name
    self.bias_initializer = initializers.get(bias_initializer).name
    init = dict(kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer)
    self.key_encoder = initializers.dense(self.key_dim, fan_in=self.template_dim, name="key_encoder",
                                          **init)                                               # EncK, Eq. 2
    self.value_hidden = initializers.dense(self.value_bottleneck, fan_in=self.template_dim,
                                           activation=value_activation, name="value_hidden", **init)  # EncV, Eq. 3
    self.value_output = initializers.dense(self.num_classes * self.template_dim, fan_in=self.value_bottleneck,
                                           name="value_output", **init)

  def build(self, input_shape):
    stddev = self.memory_stddev if self.memory_stddev is not None else 1.0 / math.sqrt(self.template_dim)
    self.memory = self.add_weight(name="memory", shape=(self.num_templates, self.template_dim),
                                  initializer=keras.initializers.RandomNormal(stddev=stddev))
    self.key_encoder.build((self.num_templates, self.template_dim))
    self.value_hidden.build((self.num_templates, self.template_dim))
    self.value_output.build((self.num_templates, self.value_bottleneck))

  def keys(self):
    """Eq. 2: K^M = EncK(M), [K, F/m]."""
    return self.key_encoder(self.memory)

  def values(self):
    """Eq. 3: V^M = EncV(M), [K, C*F], returned as per-template classifiers [K, F, C] (row-major, see module)."""
    flat = self.value_output(self.value_hidden(self.memory))                  # [K, C*F]
    return tf.reshape(flat, [self.num_templates, self.template_dim, self.num_classes])

  def diversity(self):
    """Eq. 10 on this layer's memory, a scalar."""
    return diversity_loss(self.memory)

  def call(self, inputs):
    queries, features, mask = inputs
    similarity = scaled_similarity(queries, self.keys(), mask)               # [B, T, K]  Eq. 5
    cas = segment_class_scores(features, self.values(), similarity)           # [B, T, C]  Eqs. 6, 15
    cas = masking.apply_mask(cas, mask)
    diversity = tf.fill(tf.shape(features)[:1], self.diversity())            # [B]        Eq. 10
    return similarity, cas, diversity

  def compute_output_spec(self, inputs):
    queries = inputs[0]
    batch, time = queries.shape[0], queries.shape[1]
    return (keras.KerasTensor((batch, time, self.num_templates)),
            keras.KerasTensor((batch, time, self.num_classes)),
            keras.KerasTensor((batch,)))

  def get_config(self):
    config = super().get_config()
    config.update(num_templates=self.num_templates, template_dim=self.template_dim, key_dim=self.key_dim,
                  value_bottleneck=self.value_bottleneck, num_classes=self.num_classes,
                  value_activation=self.value_activation, memory_stddev=self.memory_stddev,
                  kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer)
    return config
