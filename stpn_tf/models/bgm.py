"""Background modeling (Nguyen, Ramanan, Fowlkes, ICCV 2019), "Weakly-supervised action localization with
background modeling", on the shared layer library.

One Keras functional model per stream (RGB, flow), trained separately (Sec. 4.2; Eq. 12 fuses per-stream
attention and T-CAMs). Per stream, with x_t the segment features and T the number of real segments:
  attention    lambda_t = Omega(x_t) = sigmoid(FC(ReLU(FC(x_t))))                     Sec. 3.1 (ClassAgnosticAttention)
  fg pooling   x_fg = 1/T sum_t lambda_t x_t                                          Eq. 1
  classifier   p_fg[c] = softmax_c(w_c . x_fg), c = 0..C, 0 = background               Eq. 2
  fg loss      L_fg = -log p_fg[y]                                                    Eq. 3
  bg pooling   x_bg = 1/T sum_t (1 - lambda_t) x_t                                    Eq. 4
  bg loss      L_bg = -log p_bg[0],  p_bg = softmax(w . x_bg)                         Eq. 5
  fg target    lambda^fg_t = max_{y present} G(sigma) * softmax_y(w . x_t)            Eq. 6 + footnote 1
  bg target    lambda^bg_t = G(sigma) * sum_{i >= 1} softmax_i(w . x_t)               Eq. 7
  guide loss   L_guide = 1/T sum_t |lambda_t - lambda^fg_t| + |lambda_t - lambda^bg_t| Sec. 3.1 (unnumbered)
  clustering   z_fg = softmax(u . x_fg)[fg], z_bg = softmax(u . x_bg)[bg]            Eqs. 8-9
               L_cluster = -log z_fg - log z_bg                                       Eq. 10
  total        L = L_fg + alpha L_bg + beta L_guide + gamma L_cluster (+ delta L_sparse) Eq. 11 (+ STPN Eq. 2)
Inference: stpn_tf/postprocess/bgm_inference.py (Sec. 3.2, Eq. 12).

Decisions where the paper is silent (also in gin_configs/bgm.gin and the report for BUILD_NOTES.md):
  * Multi-label target of Eq. 3: the label distribution normalized over the present classes (uniform over them),
    L_fg = -sum_c q_c log p_fg[c]; it equals -log p_fg[y] for one label. A video with no label is a background
    video, y = 0 (Sec. 3: "0 indicates no action").
  * Eq. 1 / Eq. 4 normalize by T = the number of real segments (padding never counts). A weighted-mean variant
    (`pooling_normalization="attention"`, ours) is an option, see BGM.
  * Eqs. 6-7 targets are constants (tf.stop_gradient) by default: the text calls them targets that "refine the
    class-agnostic bottom-up attention"; `guide_target_gradient=True` lets the loss also move the T-CAMs.
  * Footnote 1: the per-class smoothed targets of Eq. 6 are max-pooled over the present classes (smooth, then max).
  * G(sigma): sigma in segments is gin-bound (not given), kernel truncated at `guide_truncate` sigma and
    renormalized at the video ends (stpn_tf/layers/smoothing.py).
  * Eq. 2 has no bias (use_bias=False). u_fg, u_bg of Eqs. 8-9 have no bias either.
  * STPN's sparsity loss (mean |lambda_t| over real segments) is an optional extra term, for Table 1 row 2.

Ablations (paper Table 1) are gin bindings of `BGM`: each of background_weight (alpha), guide_weight (beta),
cluster_weight (gamma) and sparsity_weight can be 0. Every term is still computed and logged.
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
from stpn_tf.layers import smoothing
from stpn_tf.layers import tcam as tcam_lib
from stpn_tf.models import base
from stpn_tf.models import stpn
from stpn_tf.postprocess import bgm_inference
from stpn_tf.postprocess import types as pp_types

# The NumPy post-processor stays free of gin; its keyword arguments are bound here as `bgm_detect.<arg>`.
bgm_detect = gin.external_configurable(bgm_inference.bgm_detect, "bgm_detect")

BACKGROUND = 0  # Index of the background class in the C + 1 softmax (Eq. 2).


@keras.saving.register_keras_serializable(package="stpn_tf")
class BackgroundAttention(keras.layers.Layer):
  """The background weights 1 - lambda_t of Eq. 4, zero at padded segments. Inputs: [attention [B, T], mask [B, T]]."""

  def call(self, inputs):
    attention, mask = inputs
    return masking.apply_mask(1.0 - attention, mask)


def build_stream_model(feature_dim: int, num_classes: int, *, hidden_units: int = 256, dropout: float = 0.0,
                       use_bias: bool = False, pooling_normalization: str = "length",
                       kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                       name: str = "bgm") -> keras.Model:
  """One stream of the background-modeling model as a Keras functional model.

  Inputs: {"features": [B, T, D] float32, "mask": [B, T] float32 (1 = real segment)}.
  pooling_normalization: "length" (Eqs. 1, 4: 1/T) or "attention" (weighted means; see BGM).
  Outputs (K = C + 1 classes, index 0 = background):
    "logits" [B, K]: w . x_fg (Eq. 2 before the softmax); "probabilities" [B, K]: p_fg;
    "bg_logits" [B, K]: w . x_bg (Eq. 5 before the softmax);
    "cluster_fg_logits" [B, 2], "cluster_bg_logits" [B, 2]: (u_fg . x, u_bg . x) for x = x_fg, x_bg (Eqs. 8-9);
    "attention" [B, T]: lambda; "tcam" [B, T, K]: w . x_t (the frame-level logits of Eqs. 6-7 and Eq. 12).
  """
  features = keras.Input(shape=(None, feature_dim), name="features")         # [B, T, D]
  mask = keras.Input(shape=(None,), name="mask")                              # [B, T]
  init = dict(kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)  # layers/initializers.py
  attention = attention_lib.ClassAgnosticAttention(hidden_units, dropout, name="attention", **init)(
      features, mask=mask)                                                    # [B, T]  Omega
  background = BackgroundAttention(name="background_attention", dtype="float32")([attention, mask])  # 1 - lambda
  fg_pool = pooling.AttentionPooling(pooling_normalization, name="fg_pooling")
  bg_pool = pooling.AttentionPooling(pooling_normalization, name="bg_pooling")
  fg_pooled = fg_pool([features, attention, mask])                            # [B, D]  Eq. 1
  bg_pooled = bg_pool([features, background, mask])                           # [B, D]  Eq. 4
  classifier = tcam_lib.ClassifierTCAM(num_classes + 1, use_bias=use_bias, name="classifier", **init)     # w_0..w_C
  logits = classifier(fg_pooled)                                              # [B, K]     Eq. 2
  bg_logits = classifier(bg_pooled)                                           # [B, K]     Eq. 5
  tcam = classifier(features)                                                 # [B, T, K]  Eqs. 6, 7, 12
  probabilities = keras.layers.Softmax(name="probabilities")(logits)
  cluster = tcam_lib.ClassifierTCAM(2, use_bias=False, name="cluster", **init)       # columns u_fg, u_bg
  outputs = {"logits": logits, "probabilities": probabilities, "bg_logits": bg_logits,
             "cluster_fg_logits": cluster(fg_pooled), "cluster_bg_logits": cluster(bg_pooled),
             "attention": attention, "tcam": tcam}
  return keras.Model({"features": features, "mask": mask}, outputs, name=name)


def foreground_targets(labels):
  """Target distribution over the C + 1 classes for Eq. 3 from multi-hot labels [B, C]: uniform over the present
  classes (indices 1..C); a video with no label gets the background class 0. Returns [B, C + 1]."""
  labels = tf.cast(labels, tf.float32)
  count = tf.reduce_sum(labels, axis=-1, keepdims=True)                      # [B, 1]
  no_label = tf.cast(count == 0, tf.float32)
  return tf.concat([no_label, labels / tf.maximum(count, 1.0)], axis=-1)


def foreground_loss(logits, labels):
  """Eq. 3: L_fg = -log p_fg[y] with p_fg the softmax of Eq. 2 (multi-label: -sum_c q_c log p_fg[c], q from
  `foreground_targets`). logits [B, C + 1], labels [B, C] -> [B]."""
  return tf.nn.softmax_cross_entropy_with_logits(labels=foreground_targets(labels), logits=logits)


def background_loss(bg_logits):
  """Eq. 5: L_bg = -log p_bg[0], p_bg the softmax of the background-pooled logits. [B, C + 1] -> [B]."""
  return -tf.nn.log_softmax(bg_logits, axis=-1)[:, BACKGROUND]


def guide_targets(tcam, labels, mask, sigma: float, truncate: float = 3.0, stop_gradient: bool = True):
  """Top-down attention targets of Eqs. 6-7.

  lambda^fg_t = max over present classes y of G(sigma) * softmax_y(w . x_t)      (Eq. 6, max-pooled: footnote 1)
  lambda^bg_t = G(sigma) * sum_{i=1..C} softmax_i(w . x_t) = G * (1 - p_t[0])    (Eq. 7)
  The softmax is per segment over the C + 1 classes and is not modulated by lambda. A video with no label has
  lambda^fg = 0 everywhere.

  Args:
    tcam: frame-level logits w . x_t [B, T, C + 1].
    labels: multi-hot [B, C].
    mask: [B, T].
    sigma, truncate: the Gaussian filter (layers/smoothing.py).
    stop_gradient: treat the targets as constants.

  Returns:
    (fg_target, bg_target), each [B, T], zero at padded segments.
  """
  probs = tf.nn.softmax(tcam, axis=-1)                                        # [B, T, C + 1]
  fg_per_class = smoothing.gaussian_smooth(probs[..., 1:], sigma, mask, truncate)         # [B, T, C]
  present = tf.cast(labels, probs.dtype)[:, None, :] > 0                      # [B, 1, C]
  fg = tf.reduce_max(tf.where(present, fg_per_class, tf.zeros_like(fg_per_class)), axis=-1)   # [B, T]
  bg = smoothing.gaussian_smooth(tf.reduce_sum(probs[..., 1:], axis=-1), sigma, mask, truncate)  # [B, T]
  if stop_gradient:
    fg, bg = tf.stop_gradient(fg), tf.stop_gradient(bg)
  return fg, bg


def guide_loss(attention, fg_target, bg_target, mask):
  """Self-guided attention loss (Sec. 3.1, after Eq. 7): 1/T sum_t |lambda_t - lambda^fg_t| + |lambda_t -
  lambda^bg_t| over the real segments. All [B, T] -> [B]."""
  return masking.masked_mean(tf.abs(attention - fg_target) + tf.abs(attention - bg_target), mask)


def cluster_loss(cluster_fg_logits, cluster_bg_logits):
  """Eqs. 8-10: z_fg = e^{u_fg x_fg} / (e^{u_fg x_fg} + e^{u_bg x_fg}), z_bg = e^{u_bg x_bg} / (e^{u_fg x_bg} +
  e^{u_bg x_bg}); L_cluster = -log z_fg - log z_bg. Logits [B, 2] ordered (u_fg ., u_bg .) -> [B]."""
  return -tf.nn.log_softmax(cluster_fg_logits, axis=-1)[:, 0] - tf.nn.log_softmax(cluster_bg_logits, axis=-1)[:, 1]


def bgm_loss(outputs: Dict[str, tf.Tensor], labels, mask, *, alpha: float = 0.1, beta: float = 0.1,
             gamma: float = 0.1, delta: float = 0.0, sigma: float = 1.0, truncate: float = 3.0,
             target_gradient: bool = False) -> Dict[str, tf.Tensor]:
  """Eq. 11 per video: L = L_fg + alpha L_bg + beta L_guide + gamma L_cluster (+ delta L_sparse, STPN Eq. 2).

  Every term is returned ([B] each) whatever its weight, so that switched-off terms are still logged.
  """
  l_fg = foreground_loss(outputs["logits"], labels)
  l_bg = background_loss(outputs["bg_logits"])
  fg_target, bg_target = guide_targets(outputs["tcam"], labels, mask, sigma, truncate,
                                       stop_gradient=not target_gradient)
  l_guide = guide_loss(outputs["attention"], fg_target, bg_target, mask)
  l_cluster = cluster_loss(outputs["cluster_fg_logits"], outputs["cluster_bg_logits"])
  l_sparse = stpn.sparsity_loss(outputs["attention"], mask)
  total = l_fg + alpha * l_bg + beta * l_guide + gamma * l_cluster + delta * l_sparse
  return {"foreground": l_fg, "background": l_bg, "guide": l_guide, "cluster": l_cluster, "sparsity": l_sparse,
          "total": total}


@gin.configurable
class BGM(base.PerStreamTask):
  """The background-modeling model as a task: networks, inputs, losses (Eq. 11) and inference (Eq. 12).

  Args:
    modalities: streams to train (separately) and fuse, ("rgb", "flow") in the paper.
    background_weight: alpha of Eq. 11 (0.1, Sec. 4.2); 0 switches L_bg off.
    guide_weight: beta of Eq. 11 (0.1); 0 switches L_guide off.
    cluster_weight: gamma of Eq. 11 (0.1); 0 switches L_cluster off.
    sparsity_weight: weight of STPN's sparsity loss (not in Eq. 11; Table 1 row 2 uses it); default 0.
    guide_sigma: sigma of G(sigma) in Eqs. 6-7, in segments (not given by the paper).
    guide_truncate: the Gaussian kernel's half-width in sigmas.
    guide_target_gradient: let L_guide's gradient flow into the targets (default: they are constants).
    hidden_units: width of Omega's first FC (not given by the paper).
    dropout: dropout after Omega's first FC.
    use_bias: bias in the classifier w (Eq. 2 has none).
    pooling_normalization: "length" = the 1/T of Eqs. 1 and 4 (default); "attention" = weighted means
      sum_t lambda_t x_t / sum_t lambda_t and sum_t (1 - lambda_t) x_t / sum_t (1 - lambda_t) (ours, not the paper:
      removes the coupling between the attention's overall level and the scale of x_fg and x_bg; see the
      "attention collapse" note in gin_configs/bgm.gin).
    kernel_initializer: weight initialization of every FC (not given by the paper): a scheme name of
      stpn_tf/layers/initializers.py.
    bias_initializer: bias initialization, a scheme name likewise.
  """

  name = "bgm"
  stream_model_fn = staticmethod(build_stream_model)
  video_level_outputs = ("logits", "probabilities", "bg_logits", "cluster_fg_logits", "cluster_bg_logits")

  def __init__(self, modalities: Sequence[str] = ("rgb", "flow"), background_weight: float = 0.1,
               guide_weight: float = 0.1, cluster_weight: float = 0.1, sparsity_weight: float = 0.0,
               guide_sigma: float = 1.0, guide_truncate: float = 3.0, guide_target_gradient: bool = False,
               hidden_units: int = 256, dropout: float = 0.0, use_bias: bool = False,
               pooling_normalization: str = "length", kernel_initializer: str = "glorot_uniform",
               bias_initializer: str = "zeros"):
    unknown = set(modalities) - {"rgb", "flow"}
    if unknown or not modalities:
      raise ValueError(f"BGM.modalities must be a non-empty subset of ('rgb', 'flow'), got {modalities!r}")
    weights = dict(background_weight=background_weight, guide_weight=guide_weight, cluster_weight=cluster_weight,
                   sparsity_weight=sparsity_weight)
    for key, value in weights.items():
      if not np.isfinite(value) or value < 0:
        raise ValueError(f"BGM.{key} must be a finite number >= 0, got {value}")
    smoothing.gaussian_kernel(guide_sigma, guide_truncate)  # validates sigma and truncate
    self.modalities = tuple(modalities)
    self.loss_kwargs = dict(alpha=float(background_weight), beta=float(guide_weight), gamma=float(cluster_weight),
                            delta=float(sparsity_weight), sigma=float(guide_sigma), truncate=float(guide_truncate),
                            target_gradient=bool(guide_target_gradient))
    self.model_kwargs = dict(hidden_units=hidden_units, dropout=dropout, use_bias=use_bias,
                             pooling_normalization=pooling_normalization,
                             kernel_initializer=initializers.get(kernel_initializer).name,
                             bias_initializer=initializers.get(bias_initializer).name)

  def losses(self, network: str, outputs, batch) -> Dict[str, tf.Tensor]:
    return bgm_loss(outputs, batch["labels"], batch["mask"], **self.loss_kwargs)

  def video_probabilities(self, outputs_by_network: Dict[str, Dict[str, np.ndarray]]) -> np.ndarray:
    """Video-level scores [C] of the real classes: p_fg[1:] (Eq. 2) averaged over the streams."""
    return np.mean([o["probabilities"][1:] for o in outputs_by_network.values()], axis=0)

  def detect(self, outputs_by_network: Dict[str, Dict[str, np.ndarray]], feature_rate: float):
    """Detections of one video (Sec. 3.2): per-stream attention [T], raw T-CAM of the real classes [T, C]
    (column 0, the background, dropped) and p_fg of the real classes [C]."""
    streams = {m: pp_types.StreamOutput(o["attention"], o["tcam"][:, 1:], o["probabilities"][1:])
               for m, o in outputs_by_network.items()}
    return bgm_detect(streams.get("rgb"), streams.get("flow"), feature_rate)
