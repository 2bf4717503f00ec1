"""AUMN: Action Unit Memory Network (Luo, Yang, Zhang, Zhang, Wu, CVPR 2021).

One Keras functional model per stream (RGB, flow), trained separately (section 4.1), on top of the memory bank of
stpn_tf/layers/memory.py:
  embedding          X^e = ReLU(W_emb * X + b_emb), temporal conv 1024 -> 512        Eq. 1
  memory             K^M = EncK(M), V^M = EncV(M)                                      Eqs. 2-3
  queries            Q = EncQ(X^e), one FC to F/m                                      section 3.2
  self-attention     X^s = (softmax(Q Q^T / sqrt(F/m)) + I) X^e                        Eq. 4
  cross-attention    S = sigmoid(Q (K^M)^T / sqrt(F/m))                                Eq. 5
  classifiers, CAS   W^cls(t) from S V^M; C(t) = X^s(t) W^cls(t)                       Eqs. 6, 15
  attention          a(t) = max_k S(t, k)                                              Eq. 7
  video prediction   y_hat = softmax((1/l) sum_t a(t) C(t))                            Eq. 8
  losses             L = L_cls + alpha L_d + beta L_h + gamma L_s                       Eqs. 9-14
Inference (section 3.3, Eq. 16) is stpn_tf/postprocess/aumn_inference.py.

Decisions where the paper is silent or ambiguous (also in BUILD_NOTES.md "Paper notes"):
  * Kernel size of the embedding convolution (gin, default 3), m (key_reduction, default 4: F/m = 128), the EncV
    bottleneck width (default 128) and its activation (ReLU) are not given.
  * Padding: padded segments are zeroed before the convolution (so the convolution sees the same zeros at a video's
    end as the 'same' zero padding of an unpadded video) and after it; they are neither attended to nor attend in
    Eq. 4, their similarities (Eq. 5), attention (Eq. 7) and CAS are 0, and l in Eq. 8 counts real segments only.
  * Eq. 13 is printed as (1/B) sum_i ||a_i||_1. The default here divides each ||a_i||_1 by the number of real
    segments l_i (a per-segment mean, as the 1/l_i of Eq. 8). With the printed sum the penalty on each segment's
    a(t) is gamma, against about |C(t)| / l_i from L_cls through Eq. 8: on the tiny synthetic set the printed form
    drives a(t) to 0 on every segment within 50 steps (sigmoid saturated, the classifier no longer learns, and
    both networks stay at chance). `sparsity_normalization = 'sum'` gives the printed form.
  * Eq. 11 sums S over time as printed, so with hundreds of segments the softmax is nearly one-hot and L_h has
    little gradient; Eq. 12 is the Euclidean norm (not squared) of the batch-mean p^O, computed per replica under
    a distribution strategy.
  * Memory initialization: N(0, 1/F) per entry (rows of about unit norm); the paper says only "random".
  * With K = 1 the diversity and homogeneity losses are off (Fig. 4 caption).

Ablations (paper Table 4 and Fig. 4) are gin bindings of `AUMN`:
  use_sparsity_loss / use_diversity_loss / use_homogeneity_loss / use_self_attention = False, num_templates = K.
"""

import math
from typing import Dict, Optional, Sequence

import gin
import keras
import numpy as np
import tensorflow as tf

from stpn_tf.layers import initializers
from stpn_tf.layers import masking
from stpn_tf.layers import memory as memory_lib
from stpn_tf.layers import pooling
from stpn_tf.models import base
from stpn_tf.postprocess import aumn_inference
from stpn_tf.postprocess import types as pp_types

# The NumPy post-processor stays free of gin; its keyword arguments are bound here as `aumn_detect.<arg>`.
aumn_detect = gin.external_configurable(aumn_inference.aumn_detect, "aumn_detect")

SPARSITY_NORMALIZATIONS = ("length", "sum")


@keras.saving.register_keras_serializable(package="stpn_tf")
class TemporalEmbedding(keras.layers.Layer):
  """AUMN Eq. 1, the task-adaptation layer: X^e = ReLU(W_emb * X + b_emb), a temporal convolution.

  'same' padding; padded segments (mask 0) are zeroed on the way in and on the way out, so a padded video gives
  exactly the rows of the same video unpadded.

  Inputs: [features [B, T, D], mask [B, T]]. Output: X^e [B, T, units]. kernel_initializer / bias_initializer:
  scheme names of stpn_tf/layers/initializers.py (the conv's fan_in is kernel_size * D).
  """

  def __init__(self, units: int = 512, kernel_size: int = 3, kernel_initializer: str = "glorot_uniform",
               bias_initializer: str = "zeros", **kwargs):
    super().__init__(**kwargs)
    self.units = int(units)
    self.kernel_size = int(kernel_size)
    self.kernel_initializer = initializers.get(kernel_initializer).name
    self.bias_initializer = initializers.get(bias_initializer).name
    self.conv = keras.layers.Conv1D(self.units, self.kernel_size, padding="same", activation="relu", name="conv",
                                    kernel_initializer=initializers.kernel(self.kernel_initializer))

  def build(self, input_shape):
    self.conv.bias_initializer = initializers.bias(self.bias_initializer,
                                                   self.kernel_size * int(input_shape[0][-1]))
    self.conv.build(input_shape[0])

  def call(self, inputs):
    features, mask = inputs
    return masking.apply_mask(self.conv(masking.apply_mask(features, mask)), mask)

  def compute_output_spec(self, inputs):
    features = inputs[0]
    return keras.KerasTensor(tuple(features.shape[:-1]) + (self.units,))

  def get_config(self):
    config = super().get_config()
    config.update(units=self.units, kernel_size=self.kernel_size, kernel_initializer=self.kernel_initializer,
                  bias_initializer=self.bias_initializer)
    return config


def self_attention_with_identity(queries, features, mask=None):
  """AUMN Eq. 4: X^s = (softmax(Q Q^T / sqrt(d)) + I) X^e, d = F/m, the softmax over the attended segments.

  Masked: padded segments get no weight in any row's softmax, and their own output rows are 0.

  Args:
    queries: Q [B, T, d].
    features: X^e [B, T, F].
    mask: [B, T] or None.

  Returns:
    X^s [B, T, F].
  """
  scale = 1.0 / math.sqrt(int(queries.shape[-1]))
  # The softmax (and its -1e9 masking, which float16 cannot hold) in float32 under mixed precision.
  logits = tf.cast(tf.einsum("bsd,btd->bst", queries, queries) * scale, tf.float32)   # [B, T(query), T(key)]
  if mask is not None:
    key_is_real = tf.cast(mask, tf.bool)[:, None, :]                           # [B, 1, T]
    logits = tf.where(key_is_real, logits, tf.constant(-1e9, logits.dtype))
  weights = tf.cast(tf.nn.softmax(logits, axis=-1), features.dtype)
  refined = tf.einsum("bst,btf->bsf", weights, features) + features
  return masking.apply_mask(refined, mask)


@keras.saving.register_keras_serializable(package="stpn_tf")
class SelfAttentionWithIdentity(keras.layers.Layer):
  """Layer form of `self_attention_with_identity` (Eq. 4). Inputs: [Q [B, T, d], X^e [B, T, F], mask [B, T]]."""

  def call(self, inputs):
    queries, features, mask = inputs
    return self_attention_with_identity(queries, features, mask)

  def compute_output_spec(self, inputs):
    return keras.KerasTensor(inputs[1].shape)


@keras.saving.register_keras_serializable(package="stpn_tf")
class ForegroundAttention(keras.layers.Layer):
  """AUMN Eq. 7: a(t) = max_k S(t, k). Inputs: [S [B, T, K], mask [B, T]]. Output: a [B, T], 0 on padding."""

  def call(self, inputs):
    similarity, mask = inputs
    return masking.apply_mask(tf.reduce_max(similarity, axis=-1), mask)

  def compute_output_spec(self, inputs):
    return keras.KerasTensor(inputs[0].shape[:-1])


def build_stream_model(feature_dim: int, num_classes: int, *, embedding_dim: int = 512,
                       embedding_kernel_size: int = 3, num_templates: int = 7, key_reduction: int = 4,
                       value_bottleneck: int = 128, use_self_attention: bool = True,
                       memory_stddev: Optional[float] = None, kernel_initializer: str = "glorot_uniform",
                       bias_initializer: str = "zeros", name: str = "aumn") -> keras.Model:
  """One AUMN stream as a Keras functional model.

  Inputs: {"features": [B, T, D] float32, "mask": [B, T] float32 (1 = real segment)}.
  Outputs: {"logits": [B, C] (the pooled scores inside the softmax of Eq. 8), "probabilities": [B, C] (y_hat,
  Eq. 8), "attention": a [B, T] (Eq. 7), "cas": C [B, T, C] (Eq. 15, before any softmax), "similarity": S
  [B, T, K] (Eq. 5), "diversity": [B] (L_d of Eq. 10, the same value for every video)}.
  """
  if embedding_dim % key_reduction:
    raise ValueError(f"embedding_dim {embedding_dim} must be divisible by key_reduction (m) {key_reduction}")
  key_dim = embedding_dim // key_reduction
  features = keras.Input(shape=(None, feature_dim), name="features")         # [B, T, D]
  mask = keras.Input(shape=(None,), name="mask")                              # [B, T]
  init = dict(kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)  # layers/initializers.py
  embedded = TemporalEmbedding(embedding_dim, embedding_kernel_size, name="embedding", **init)(
      [features, mask])                                                        # Eq. 1
  queries = initializers.dense(key_dim, fan_in=embedding_dim, name="query_encoder", **init)(embedded)  # EncQ

  if use_self_attention:
    refined = SelfAttentionWithIdentity(name="self_attention")([queries, embedded, mask])            # Eq. 4
  else:
    refined = embedded                                                         # Table 4 "w/o S": X^s = X^e
  memory = memory_lib.ActionUnitMemory(num_templates, embedding_dim, key_dim, value_bottleneck, num_classes,
                                       memory_stddev=memory_stddev, name="memory", **init)
  similarity, cas, diversity = memory([queries, refined, mask])              # Eqs. 2-3, 5-6, 15, 10
  attention = ForegroundAttention(name="attention", dtype="float32")([similarity, mask])   # Eq. 7
  logits = pooling.AttentionPooling("length", name="pooling")([cas, attention, mask])   # Eq. 8, inside softmax
  probabilities = keras.layers.Activation("softmax", name="probabilities")(logits)       # Eq. 8
  outputs = {"logits": logits, "probabilities": probabilities, "attention": attention, "cas": cas,
             "similarity": similarity, "diversity": diversity}
  return keras.Model({"features": features, "mask": mask}, outputs, name=name)


def classification_loss(logits, labels):
  """AUMN Eq. 9 per video: -sum_j y(j) log y_hat(j), y l1-normalized (footnote 1), y_hat = softmax(logits).

  logits, labels [B, C] -> [B]. (The 1/B of Eq. 9 is the trainer's division by the global batch size.)
  """
  labels = tf.cast(labels, logits.dtype)
  labels = labels / tf.maximum(tf.reduce_sum(labels, axis=-1, keepdims=True), 1e-8)
  return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def sparsity_loss(attention, mask, normalization: str = "length"):
  """AUMN Eq. 13 per video: ||a_i||_1, divided by the number of real segments l_i when normalization='length'
  (the default; see the module docstring), or the plain sum over real segments ('sum', as printed).

  attention, mask [B, T] -> [B]. (The 1/B of Eq. 13 is the trainer's batch mean.)
  """
  if normalization == "length":
    return masking.masked_mean(tf.abs(attention), mask)
  if normalization == "sum":
    return tf.reduce_sum(tf.abs(masking.apply_mask(attention, mask)), axis=1)
  raise ValueError(f"sparsity normalization must be one of {SPARSITY_NORMALIZATIONS}, got {normalization!r}")


def aumn_loss(outputs: Dict[str, tf.Tensor], labels, mask, *, diversity_weight: float, homogeneity_weight: float,
              sparsity_weight: float, sparsity_normalization: str = "length") -> Dict[str, tf.Tensor]:
  """AUMN Eq. 14 per video: L = L_cls + alpha L_d + beta L_h + gamma L_s.

  L_d (Eq. 10) and L_h (Eq. 12) are batch-level scalars; they are repeated for every video so that the trainer's
  batch mean counts each once. Returns per-example [B] terms and their weighted sum "total".
  """
  l_cls = classification_loss(outputs["logits"], labels)
  batch = tf.shape(l_cls)[:1]
  l_d = tf.cast(outputs["diversity"], l_cls.dtype)
  l_h = tf.fill(batch, memory_lib.homogeneity_loss(outputs["similarity"], mask))
  l_s = sparsity_loss(outputs["attention"], mask, sparsity_normalization)
  total = l_cls + diversity_weight * l_d + homogeneity_weight * l_h + sparsity_weight * l_s
  return {"classification": l_cls, "diversity": l_d, "homogeneity": l_h, "sparsity": l_s, "total": total}


@gin.configurable
class AUMN(base.PerStreamTask):
  """AUMN as a task: one network per stream, their losses, and the two-stream inference of section 3.3.

  Args:
    modalities: streams, each with its own network: ("rgb", "flow") in the paper (section 4.1).
    embedding_dim: F, output channels of the embedding convolution (512, section 4.1).
    embedding_kernel_size: temporal kernel size of Eq. 1 (not given by the paper).
    num_templates: K (7, section 4.1; Fig. 4 varies it).
    key_reduction: m of Eqs. 2 and 5 (F/m = key and query width; not given).
    value_bottleneck: hidden width of EncV (not given).
    diversity_weight: alpha of Eq. 14 (0.01).
    homogeneity_weight: beta of Eq. 14 (0.02).
    sparsity_weights: gamma of Eq. 14 per network ({'rgb': 0.05, 'flow': 0.03}).
    use_sparsity_loss, use_diversity_loss, use_homogeneity_loss, use_self_attention: Table 4 ablations.
    sparsity_normalization: 'length' (default) or 'sum' (Eq. 13 as printed); see the module docstring.
    memory_stddev: std of the templates' random initialization (None: 1/sqrt(F)).
    kernel_initializer: weight initialization of every convolution and FC (not given by the paper): a scheme
      name of stpn_tf/layers/initializers.py (the templates keep memory_stddev).
    bias_initializer: bias initialization, a scheme name likewise.
  """

  name = "aumn"
  stream_model_fn = staticmethod(build_stream_model)
  video_level_outputs = ("logits", "probabilities", "diversity")

  def __init__(self, modalities: Sequence[str] = ("rgb", "flow"), embedding_dim: int = 512,
               embedding_kernel_size: int = 3, num_templates: int = 7, key_reduction: int = 4,
               value_bottleneck: int = 128, diversity_weight: float = 0.01, homogeneity_weight: float = 0.02,
               sparsity_weights: Optional[Dict[str, float]] = None, use_sparsity_loss: bool = True,
               use_diversity_loss: bool = True, use_homogeneity_loss: bool = True, use_self_attention: bool = True,
               sparsity_normalization: str = "length", memory_stddev: Optional[float] = None,
               kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros"):
    unknown = set(modalities) - {"rgb", "flow"}
    if unknown or not modalities:
      raise ValueError(f"AUMN.modalities must be a non-empty subset of ('rgb', 'flow'), got {modalities!r}")
    if sparsity_normalization not in SPARSITY_NORMALIZATIONS:
      raise ValueError(f"AUMN.sparsity_normalization must be one of {SPARSITY_NORMALIZATIONS}, "
                       f"got {sparsity_normalization!r}")
    if int(num_templates) < 1:
      raise ValueError(f"AUMN.num_templates must be >= 1, got {num_templates}")
    self.modalities = tuple(modalities)
    sparsity_weights = dict(sparsity_weights if sparsity_weights is not None else {"rgb": 0.05, "flow": 0.03})
    missing = set(self.modalities) - set(sparsity_weights)
    if missing:
      raise ValueError(f"AUMN.sparsity_weights has no weight for {sorted(missing)}")
    # Fig. 4: "the L_d and L_h are removed when K = 1".
    memory_losses = int(num_templates) > 1
    self.diversity_weight = float(diversity_weight) if use_diversity_loss and memory_losses else 0.0
    self.homogeneity_weight = float(homogeneity_weight) if use_homogeneity_loss and memory_losses else 0.0
    self.sparsity_weights = {m: float(sparsity_weights[m]) if use_sparsity_loss else 0.0 for m in self.modalities}
    self.sparsity_normalization = sparsity_normalization
    self.model_kwargs = dict(embedding_dim=int(embedding_dim), embedding_kernel_size=int(embedding_kernel_size),
                             num_templates=int(num_templates), key_reduction=int(key_reduction),
                             value_bottleneck=int(value_bottleneck), use_self_attention=bool(use_self_attention),
                             memory_stddev=memory_stddev,
                             kernel_initializer=initializers.get(kernel_initializer).name,
                             bias_initializer=initializers.get(bias_initializer).name)

  def losses(self, network: str, outputs, batch) -> Dict[str, tf.Tensor]:
    return aumn_loss(outputs, batch["labels"], batch["mask"], diversity_weight=self.diversity_weight,
                     homogeneity_weight=self.homogeneity_weight, sparsity_weight=self.sparsity_weights[network],
                     sparsity_normalization=self.sparsity_normalization)

  def video_probabilities(self, outputs_by_network: Dict[str, Dict[str, np.ndarray]]) -> np.ndarray:
    """Video-level class scores [C]: the mean over the networks of y_hat (Eq. 8)."""
    return np.mean([o["probabilities"] for o in outputs_by_network.values()], axis=0)

  def detect(self, outputs_by_network: Dict[str, Dict[str, np.ndarray]], feature_rate: float):
    """Detections of one video from its per-network outputs (attention [T], cas [T, C], probabilities [C])."""
    streams = {m: pp_types.StreamOutput(o["attention"], o["cas"], o["probabilities"])
               for m, o in outputs_by_network.items()}
    return aumn_detect(streams.get("rgb"), streams.get("flow"), feature_rate)
