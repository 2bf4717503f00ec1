"""STPN: Sparse Temporal Pooling Network (Nguyen, Liu, Prasad, Han, CVPR 2018).

One Keras functional model per stream (RGB, flow), trained separately with identical settings (section 3.3):
  attention   lambda_t = sigmoid(FC(ReLU(FC(x_t))))                 section 3.1
  pooling     x_bar = sum_t w_t x_t                                 Eq. 1 (normalization: see layers/pooling.py)
  scores      s^c = w^c . x_bar,  p^c = sigmoid(s^c)                Eq. 3
  T-CAM       a_t^c = w^c . x_t                                     Eq. 4
  loss        L = L_class + beta * L_sparsity                       Eq. 2
Inference fuses the two streams with the post-processor (Eqs. 5-7, stpn_tf/postprocess/stpn_inference.py).

Ablations (paper Fig. 5 and 6) are gin bindings of `STPN`:
  no attention (plain temporal average pooling, the CAM baseline):  STPN.use_attention = False
  attention without the sparsity loss:                              STPN.sparsity_weight = 0.0
  modalities:                                                       STPN.modalities = ('rgb',) / ('flow',)
"""

from typing import Dict, Sequence

import gin
import keras
import numpy as np
import tensorflow as tf

from stpn_tf.layers import attention as attention_lib
from stpn_tf.layers import initializers
from stpn_tf.layers import masking
from stpn_tf.layers import pooling
from stpn_tf.layers import tcam as tcam_lib
from stpn_tf.models import base
from stpn_tf.postprocess import stpn_inference
from stpn_tf.postprocess import types as pp_types

# The NumPy post-processor stays free of gin; its keyword arguments are bound here as `stpn_detect.<arg>`.
stpn_detect = gin.external_configurable(stpn_inference.stpn_detect, "stpn_detect")


def build_stream_model(feature_dim: int, num_classes: int, *, use_attention: bool = True,
                       hidden_units: int = 256, dropout: float = 0.0, pooling_normalization: str = "length",
                       use_bias: bool = False, kernel_initializer: str = "glorot_uniform",
                       bias_initializer: str = "zeros", name: str = "stpn") -> keras.Model:
  """One STPN stream as a Keras functional model (initializers: scheme names, stpn_tf/layers/initializers.py).

  Inputs: {"features": [B, T, D] float32, "mask": [B, T] float32 (1 = real segment)}.
  Outputs: {"logits": [B, C], "probabilities": [B, C] (sigmoid), "attention": [B, T], "tcam": [B, T, C]}.
  """
  features = keras.Input(shape=(None, feature_dim), name="features")         # [B, T, D]
  mask = keras.Input(shape=(None,), name="mask")                              # [B, T]
  if use_attention:
    attention = attention_lib.ClassAgnosticAttention(hidden_units, dropout, kernel_initializer=kernel_initializer,
                                                     bias_initializer=bias_initializer, name="attention")(
                                                         features, mask=mask)  # [B, T]
  else:
    # CAM baseline (Fig. 5): every real segment weighs 1, i.e. plain temporal average pooling.
    attention = keras.layers.Identity(name="attention")(mask)
  classifier = tcam_lib.ClassifierTCAM(num_classes, use_bias=use_bias, kernel_initializer=kernel_initializer,
                                       bias_initializer=bias_initializer, name="classifier")
  pooled = pooling.AttentionPooling(pooling_normalization, name="pooling")([features, attention, mask])  # [B, D]
  logits = classifier(pooled)                                                 # [B, C]   Eq. 3
  tcam = classifier(features)                                                 # [B, T, C] Eq. 4
  probabilities = keras.layers.Activation("sigmoid", name="probabilities")(logits)
  outputs = {"logits": logits, "probabilities": probabilities, "attention": attention, "tcam": tcam}
  return keras.Model({"features": features, "mask": mask}, outputs, name=name)


def classification_loss(logits, labels):
  """Multi-label cross-entropy of Eq. 2: sigmoid cross-entropy summed over classes. [B, C] x2 -> [B]."""
  return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), axis=-1)


def sparsity_loss(attention, mask):
  """L_sparsity of Eq. 2: the l1 norm of lambda divided by the number of real segments (so beta does not
  depend on video length; see BUILD_NOTES.md). attention, mask [B, T] -> [B]."""
  return masking.masked_mean(tf.abs(attention), mask)


def stpn_loss(outputs: Dict[str, tf.Tensor], labels, mask, beta: float) -> Dict[str, tf.Tensor]:
  """STPN Eq. 2 per video: L = L_class + beta * L_sparsity. Returns per-example [B] terms and the total."""
  l_class = classification_loss(outputs["logits"], labels)
  l_sparse = sparsity_loss(outputs["attention"], mask)
  return {"classification": l_class, "sparsity": l_sparse, "total": l_class + beta * l_sparse}


@gin.configurable
class STPN(base.PerStreamTask):
  """STPN as a task: which networks to build, their inputs, losses and inference.

  Args:
    modalities: streams to train and fuse, ("rgb", "flow") in the paper (Fig. 6 ablation otherwise).
    use_attention: False gives the Fig. 5 "no attention" baseline (temporal average pooling).
    sparsity_weight: beta of Eq. 2 (0 gives the Fig. 5 "attention without sparsity" baseline).
    hidden_units: width of the attention module's first FC (not given by the paper).
    dropout: dropout after the attention module's first FC.
    pooling_normalization: see layers/pooling.py.
    use_bias: bias in the final classifier (Eqs. 3-4 have none).
    kernel_initializer: weight initialization of every FC (not given by the paper): a scheme name of
      stpn_tf/layers/initializers.py, e.g. 'tf1_dense_default' (the TF1 reproduction's tf.layers.dense).
    bias_initializer: bias initialization, a scheme name likewise.
    postprocess_fn: the NumPy post-processor called at inference (gin-bound keyword arguments).
  """

  name = "stpn"
  stream_model_fn = staticmethod(build_stream_model)

  def __init__(self, modalities: Sequence[str] = ("rgb", "flow"), use_attention: bool = True,
               sparsity_weight: float = 0.2, hidden_units: int = 256, dropout: float = 0.0,
               pooling_normalization: str = "length", use_bias: bool = False,
               kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros"):
    unknown = set(modalities) - {"rgb", "flow"}
    if unknown or not modalities:
      raise ValueError(f"STPN.modalities must be a non-empty subset of ('rgb', 'flow'), got {modalities!r}")
    self.modalities = tuple(modalities)
    self.use_attention = use_attention
    self.sparsity_weight = float(sparsity_weight) if use_attention else 0.0
    self.model_kwargs = dict(use_attention=use_attention, hidden_units=hidden_units, dropout=dropout,
                             pooling_normalization=pooling_normalization, use_bias=use_bias,
                             kernel_initializer=initializers.get(kernel_initializer).name,
                             bias_initializer=initializers.get(bias_initializer).name)

  def losses(self, network: str, outputs, batch) -> Dict[str, tf.Tensor]:
    return stpn_loss(outputs, batch["labels"], batch["mask"], self.sparsity_weight)

  def video_probabilities(self, outputs_by_network: Dict[str, Dict[str, np.ndarray]]) -> np.ndarray:
    """Video-level class probabilities [C]: the mean of the streams' sigmoid scores (see postprocess)."""
    return np.mean([o["probabilities"] for o in outputs_by_network.values()], axis=0)

  def detect(self, outputs_by_network: Dict[str, Dict[str, np.ndarray]], feature_rate: float):
    """Detections of one video from its per-stream outputs (attention [T], tcam [T, C], probabilities [C])."""
    streams = {m: pp_types.StreamOutput(o["attention"], o["tcam"], o["probabilities"])
               for m, o in outputs_by_network.items()}
    return stpn_detect(streams.get("rgb"), streams.get("flow"), feature_rate)
