"""HAM-Net: hybrid soft / semi-soft / hard attention (Islam, Long, Radke, AAAI 2021).

One Keras functional model reads the concatenated RGB + flow features x_i (2048-d for I3D, section "Snippet-Level
Classification"):
  classification branch  s_i = FC(LReLU(TConv3(LReLU(TConv3(x_i)))))  in R^{C+1}, s_i(C+1) = background   (the CAS)
  attention branch       a_i = sigmoid(TConv3(act(TConv3(x_i))))  in [0, 1]                         Eq. 4
  top-k pooling          v_j = mean of the k largest s_i(j) over i                                   Eq. 1
  video scores           p_j = softmax_j(v)  over the C+1 classes                                    Eq. 2
  attention-guided       s^attn_i = s_i * a_i, v^attn, p^attn                                         Eqs. 5-6
  semi-soft attention    a^ss_i = a_i if a_i < gamma else 0                                           (before Eq. 8)
  hard attention         a^h_i  = 1   if a_i < gamma else 0                                           (before Eq. 9)
Losses (per video, `hamnet_losses`):
  L_BCL   = -sum_{j=1}^{C+1} y_j log p_j,            background label y_{C+1} = 1                   Eq. 3
  L_SAL   = -sum_j y^f_j log p^attn_j,               y^f_{C+1} = 0                                   Eq. 7 (see typo)
  L_SSAL  = -sum_j y^f_j log p^semi-soft_j                                                           Eq. 8
  L_HAL   = -sum_j y_j log p^hard_j,                 background label on                             Eq. 9
  L_sparse = sum_i |a_i|                             (mean over real segments, see below)             Eq. 11
  L_guide  = sum_i |1 - a_i - sbar_i(C+1)|,  sbar = softmax over all C+1 logits                       Eqs. 12-13
  L = l0 L_BCL + l1 L_SAL + l2 L_SSAL + l3 L_HAL + alpha L_sparse + beta L_guide                      Eq. 10
Inference: stpn_tf/postprocess/hamnet_inference.py (class rejection, attention-thresholded proposals scored with the
outer-inner contrast of Eqs. 14-16, class-wise NMS).

Decisions where the paper is silent, ambiguous or has a typo (also in BUILD_NOTES.md "Paper notes"):
  * Eq. 7 prints log(p_j); the text defines the soft attention-guided loss on p^attn_j (Eq. 6), which is what is
    used here (with p_j, L_SAL would be L_BCL with the background label off).
  * Eq. 12 prints the denominator sum_{j=1}^{c}: a softmax over all C+1 logits (j = 1..C+1) is used, so sbar is a
    probability in [0, 1] comparable with 1 - a_i (the authors' code does the same).
  * Eqs. 11 and 13 are sums over snippets; we average over the *real* segments so that alpha and beta do not depend
    on the video length or the padding (the authors' code also takes a mean).
  * Eqs. 3, 7-9 are used literally (multi-hot y, no normalization); `normalize_labels=True` divides y by
    (sum_j y_j + 1e-4), as the authors' code does (system/system_th.py `topkloss`).
  * Semi-soft / hard attention: the threshold gamma is absolute on a_i, as printed (`drop_threshold_mode =
    'absolute'`). The authors' released code (system/system_th.py, class ADL) thresholds relative to the video's
    maximum: a segment is kept when a_i < gamma * max_t a_t, i.e. the *most* attended segments are dropped, as in
    the paper, only with a per-video threshold (`drop_threshold_mode = 'relative'`). Its training forward does not
    pass `include_min`, so its other variant, (max - min) * gamma + min, is never used by the loss and not offered.
    Dropped segments get attention 0; the hard attention is a constant (no gradient flows through the 0/1 mask into
    the attention branch), the semi-soft one passes a_i's gradient for the kept segments.
  * Dropped segments' class logits in L_SSAL / L_HAL: the paper multiplies, s * a^ss and s * a^h, so a dropped
    segment's logits are 0 (`dropped_logit_fill = 'zero'`). The authors' code (`_multiply(..., include_min=True)`)
    computes w * (s - m) + m with m_i = min_j s_i(j), the segment's minimum over the C+1 classes: a dropped segment
    gets m_i in every class, a kept one s (hard) or a * s + (1 - a) * m (semi-soft) (`'segment_min'`). L_SAL uses
    s * a in both.
  * Attention branch: the paper's text has two temporal convolutions (`attention_depth = 2`); the authors' code has
    three: kernel 3 -> 512, LeakyReLU(0.2), kernel 3 -> 512, LeakyReLU(0.2), kernel 1 -> 1, sigmoid
    (`attention_depth = 3`, widths `attention_units`).
  * Initialization is not given: Keras defaults by default (`kernel_initializer = 'glorot_uniform'`,
    `bias_initializer = 'zeros'`); the authors' code uses kaiming_uniform_(nonlinearity='leaky_relu', a = 0) with
    zero biases on every convolution (utils/utils.py `init_weights`): `'kaiming_uniform_leaky_relu'` for both.
  * ActivityNet: the paper average-pools "the final CAS" in post-processing (`hamnet_detect.smooth_window`); the
    authors' code pools the CAS and the attention inside the model, in training too, with zero padding counted
    (system/system_anet.py, AvgPool1d(17)): `pool_window = 17`.
  * Widths of the temporal convolutions, dropout and the nonlinearity between the attention convolutions are not given
    (gin-bound, documented in gin_configs/hamnet.gin).
  * Attention collapse (ours, `center_features`): trained as printed with Adam on the built-in data, the soft
    attention collapses to a_i ~ 0 on every segment within 10-50 steps and never recovers (sigmoid saturation), for
    every learning rate tried (1e-3 .. 1e-5), also with the authors' code's widths 2048/512, dropout 0.7, coupled
    weight decay 1e-3 and normalized labels. Cause: early on, the background logit is high everywhere (BCL
    always has the background label on), so L_SAL (background label off) is lowered fastest by shrinking a on every
    segment, and L_sparse + L_guide have the trivial minimum a = 0, sbar_{C+1} = 1; with non-negative 2048-d inputs,
    Adam's near sign-like steps move every first-layer weight of the attention branch the same way, so the
    pre-sigmoid drops by several units per step, into saturation, before the classifier can tell actions from
    background. Centering the input features (a running mean, BatchNorm-style without scaling, padding excluded)
    removes that coherence: at inference it is a fixed shift that the first convolutions' biases can absorb, so it
    changes the optimization only, not the model family. `HAMNet.center_features = False` is the paper's network.
  * Top-k: k may be absolute (paper: 50 of 500 sampled segments) or a fraction of the real segments; it is clipped to
    the number of real segments and never selects padding (stpn_tf/layers/temporal.py).

Ablations:
  * loss terms (paper Table 1): `HAMNet.loss_terms`, a subset of LOSS_TERMS; TABLE1_ROWS lists the paper's rows, e.g.
    row 5 ("MIL only" with sparsity and guide) is `HAMNet.loss_terms = ('bcl', 'sal', 'sparse', 'guide')`.
  * dropping mode (paper Fig. 4a): `HAMNet.drop_mode` = 'selective' (the paper's, a_i >= gamma dropped), 'random'
    (as many segments in expectation as the selective rule would drop, at random places, like Hide-and-Seek) or
    'inverse' (a_i < gamma dropped, i.e. the less discriminative segments).
"""

from typing import Dict, Sequence, Union

import gin
import keras
import numpy as np
import tensorflow as tf

from stpn_tf.layers import initializers
from stpn_tf.layers import masking
from stpn_tf.layers import temporal
from stpn_tf.postprocess import hamnet_inference

# The NumPy post-processor stays free of gin; its keyword arguments are bound here as `hamnet_detect.<arg>`.
hamnet_detect = gin.external_configurable(hamnet_inference.hamnet_detect, "hamnet_detect")

LOSS_TERMS = ("bcl", "sal", "ssal", "hal", "sparse", "guide")
LABEL_NORMALIZATION_EPSILON = 1e-4     # the authors' code: y / (sum y + 1e-4) (system/system_th.py topkloss)
DROP_MODES = ("selective", "random", "inverse")

# Paper Table 1: the loss terms of each row (AVG mAP 0.1:0.7 on THUMOS14 in the comment).
TABLE1_ROWS = {
    1: ("bcl",),                                                  # 24.6
    2: ("bcl", "sal"),                                            # 30.8
    3: ("bcl", "sal", "guide"),                                   # 28.9
    4: ("bcl", "sal", "sparse"),                                  # 30.9
    5: ("bcl", "sal", "sparse", "guide"),                         # 34.8
    6: ("bcl", "sal", "hal", "ssal"),                             # 30.9
    7: ("bcl", "sal", "hal", "ssal", "guide"),                    # 31.1
    8: ("bcl", "sal", "hal", "ssal", "sparse"),                   # 37.9
    9: ("bcl", "sal", "hal", "sparse", "guide"),                  # 36.6
    10: ("bcl", "sal", "ssal", "sparse", "guide"),                # 38.1
    11: ("bcl", "sal", "hal", "ssal", "sparse", "guide"),         # 39.8
}


# ---------------------------------------------------------------------------------------------------------------------
# Layers.
# ---------------------------------------------------------------------------------------------------------------------


DROP_THRESHOLD_MODES = ("absolute", "relative")
DROPPED_LOGIT_FILLS = ("zero", "segment_min")


def drop_threshold(attention, mask, gamma: float, threshold_mode: str = "absolute"):
  """The per-video drop threshold: gamma (paper, absolute) or gamma * max_t a_t over the real segments (relative,
  the authors' code, system/system_th.py ADL). attention a [B, T] in [0, 1], mask [B, T] -> [B, 1]."""
  if threshold_mode not in DROP_THRESHOLD_MODES:
    raise ValueError(f"drop_threshold_mode must be one of {DROP_THRESHOLD_MODES}, got {threshold_mode!r}")
  if threshold_mode == "absolute":
    return tf.fill([tf.shape(attention)[0], 1], tf.cast(gamma, attention.dtype))
  # a >= 0 (a sigmoid), so the max of a * mask is the max over the real segments (0 for an all-padding row).
  return gamma * tf.reduce_max(attention * tf.cast(mask, attention.dtype), axis=-1, keepdims=True)


def drop_masks(attention, mask, gamma: float, mode: str = "selective", random_uniform=None,
               threshold_mode: str = "absolute"):
  """The keep masks behind the semi-soft and hard attentions (HAM-Net, "Semi-Soft / Hard Attention Score").

  With g = `drop_threshold` (gamma, or gamma * max_t a_t for threshold_mode "relative"):
  selective (paper): keep_i = [a_i < g] (the most discriminative segments, a_i >= g, are dropped).
  inverse (Fig. 4a baseline): keep_i = [a_i >= g].
  random (Fig. 4a baseline): every real segment is dropped independently with probability q_b = the fraction of the
    video's real segments that the selective rule drops, so the expected amount dropped matches and only the
    places are random. `random_uniform` [B, T] in [0, 1) supplies the randomness.

  Args:
    attention: a [B, T].
    mask: [B, T] real-segment mask (None: all real).
    gamma: drop threshold.
    mode: one of DROP_MODES.
    random_uniform: [B, T] uniform draws, required for mode "random".
    threshold_mode: "absolute" (paper) or "relative" (authors' code).

  Returns:
    keep [B, T] float, 0 on padding.
  """
  if mode not in DROP_MODES:
    raise ValueError(f"drop_mode must be one of {DROP_MODES}, got {mode!r}")
  if mask is None:
    mask = masking.ones_mask(attention)
  mask = tf.cast(mask, attention.dtype)
  threshold = drop_threshold(attention, mask, gamma, threshold_mode)      # [B, 1]
  discriminative = tf.cast(attention >= threshold, attention.dtype)        # [B, T]
  if mode == "selective":
    keep = 1.0 - discriminative
  elif mode == "inverse":
    keep = discriminative
  else:
    if random_uniform is None:
      raise ValueError("drop mode 'random' needs random_uniform draws")
    fraction = masking.masked_mean(discriminative, mask)                    # [B]
    keep = tf.cast(random_uniform >= fraction[:, None], attention.dtype)
  return keep * mask


@keras.saving.register_keras_serializable(package="stpn_tf")
class HybridAttention(keras.layers.Layer):
  """Semi-soft and hard attentions from the soft attention a (HAM-Net, before Eqs. 8 and 9).

      a^semi-soft_i = a_i * keep_i,   a^hard_i = keep_i,   keep from `drop_masks` (selective: keep_i = [a_i < gamma]).

  The keep mask is a constant for the gradient. Inputs: [attention [B, T], mask [B, T]]. Outputs: (semi_soft [B, T],
  hard [B, T]), both 0 on padding. The "random" mode draws new places at every training call (deterministic at
  inference, where it keeps every segment: the drop attentions are only used by the training losses).
  """

  def __init__(self, gamma: float = 0.2, drop_mode: str = "selective", seed: int = 0,
               threshold_mode: str = "absolute", **kwargs):
    super().__init__(**kwargs)
    if drop_mode not in DROP_MODES:
      raise ValueError(f"drop_mode must be one of {DROP_MODES}, got {drop_mode!r}")
    if threshold_mode not in DROP_THRESHOLD_MODES:
      raise ValueError(f"drop_threshold_mode must be one of {DROP_THRESHOLD_MODES}, got {threshold_mode!r}")
    self.threshold_mode = threshold_mode
    self.gamma = float(gamma)
    self.drop_mode = drop_mode
    self.seed = int(seed)
    self._seed_generator = keras.random.SeedGenerator(self.seed) if drop_mode == "random" else None

  def call(self, inputs, training=None):
    attention, mask = inputs
    attention = tf.convert_to_tensor(attention)
    draws = None
    if self.drop_mode == "random":
      if training:
        draws = keras.random.uniform(tf.shape(attention), seed=self._seed_generator)
      else:
        draws = tf.ones_like(attention)      # keep everything outside training
    keep = tf.stop_gradient(drop_masks(attention, mask, self.gamma, self.drop_mode, draws, self.threshold_mode))
    return attention * keep, keep

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(gamma=self.gamma, drop_mode=self.drop_mode, seed=self.seed, threshold_mode=self.threshold_mode)
    return config


@keras.saving.register_keras_serializable(package="stpn_tf")
class ZeroPaddedAveragePool(keras.layers.Layer):
  """The authors' code's in-model smoothing on ActivityNet (system/system_anet.py, --rat2):
  AvgPool1d(window, stride 1, padding window // 2, count_include_pad=True) along time, on the CAS and on the
  attention, in training and at test.

      out_t = (1 / w) * sum_{|u - t| <= w // 2} x_u,   x_u = 0 outside the video (and on padded rows)

  Padded rows are zeroed before (so a padded batch gives the same values on its real rows as the video alone:
  torch's zero padding beyond the end) and after. Inputs: [values [B, T] or [B, T, C], mask [B, T]]; same shape out.
  """

  def __init__(self, window: int = 1, **kwargs):
    super().__init__(**kwargs)
    if isinstance(window, bool) or int(window) != window or window < 1 or window % 2 == 0:
      raise ValueError(f"the pooling window must be an odd integer >= 1, got {window!r}")
    self.window = int(window)

  def call(self, inputs):
    values, mask = inputs
    values = masking.apply_mask(values, mask)
    if self.window == 1:
      return values
    squeeze = values.shape.rank == 2
    x = values[..., None] if squeeze else values                                # [B, T, C]
    half = self.window // 2
    sums = tf.cumsum(tf.pad(x, [[0, 0], [half + 1, half], [0, 0]]), axis=1)     # [B, T + 2 half + 1, C]
    pooled = (sums[:, self.window:] - sums[:, :-self.window]) / float(self.window)   # [B, T, C]
    return masking.apply_mask(pooled[..., 0] if squeeze else pooled, mask)

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(window=self.window)
    return config


@keras.saving.register_keras_serializable(package="stpn_tf")
class VideoScores(keras.layers.Layer):
  """Eqs. 5-6 at inference: v^attn = top-k mean of s * a (Eq. 5), p^attn = softmax over the C+1 classes (Eq. 6).

  Inputs: [cas [B, T, C+1], attention [B, T], mask [B, T]]. Outputs: (v^attn [B, C+1], p^attn of the C real classes
  [B, C]).
  """

  def __init__(self, k: Union[int, float] = 50, **kwargs):
    super().__init__(**kwargs)
    temporal.resolve_top_k(k, tf.ones([1]))
    self.k = k

  def call(self, inputs):
    cas, attention, mask = inputs
    logits = temporal.masked_top_k_mean(cas * attention[..., None], mask, self.k)     # [B, C+1]  Eq. 5
    probabilities = tf.nn.softmax(logits, axis=-1)[:, :-1]                              # [B, C]    Eq. 6
    return logits, probabilities

  def get_config(self):
    config = super().get_config()
    config.update(k=self.k)
    return config


def build_model(feature_dim: int, num_classes: int, *, top_k: Union[int, float] = 50, gamma: float = 0.2,
                drop_mode: str = "selective", classifier_units: Sequence[int] = (2048, 2048),
                attention_units: int = 512, attention_activation: str = "leaky_relu",
                negative_slope: float = 0.2, dropout: float = 0.7, kernel_size: int = 3,
                center_features: bool = False, drop_threshold_mode: str = "absolute", attention_depth: int = 2,
                kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                pool_window: int = 1, name: str = "hamnet") -> keras.Model:
  """The HAM-Net network as a Keras functional model.

  Inputs: {"features": [B, T, D] (RGB and flow concatenated), "mask": [B, T]}.
  Outputs (time on axis 1 unless noted): "cas" s [B, T, C+1] (last column background), "attention" a [B, T],
  "semi_soft_attention" [B, T], "hard_attention" [B, T], "logits" v^attn [B, C+1] and "probabilities" p^attn of the C
  real classes [B, C] (both video-level).

  Args:
    feature_dim: D.
    num_classes: C (the background class is added here).
    top_k: k of Eqs. 1/5 for the video-level outputs (int, or fraction of the real segments).
    gamma: drop threshold of the semi-soft / hard attentions.
    drop_mode: see `drop_masks`.
    classifier_units: widths of the classification branch's two temporal convolutions (each + LeakyReLU).
    attention_units: width of the attention branch's first temporal convolution (the second outputs 1 channel).
    attention_activation: nonlinearity between the two attention convolutions ("leaky_relu", "relu" or None).
    negative_slope: LeakyReLU slope.
    dropout: dropout rate before the final FC of the classification branch.
    kernel_size: temporal kernel size (3 in the paper).
    center_features: subtract the running mean input feature before both branches (ours, not in the paper; see
      the module docstring and layers/temporal.py MaskedFeatureCentering).
    drop_threshold_mode: "absolute" (paper) or "relative" (authors' code), see `drop_masks`.
    attention_depth: 2 (paper: TConv3 -> attention_units, TConv3 -> 1) or 3 (authors' code: TConv3 ->
      attention_units, TConv3 -> attention_units, TConv1 -> 1).
    kernel_initializer, bias_initializer: scheme names of stpn_tf/layers/initializers.py, for every layer.
    pool_window: odd window of the zero-padded average pooling applied to the CAS and the attention inside the
      model (`ZeroPaddedAveragePool`; the authors' ActivityNet code: 17); 1 = none (paper).
    name: model name.
  """
  if len(classifier_units) != 2:
    raise ValueError(f"the classification branch has two temporal convolutions, got widths {classifier_units}")
  if attention_depth not in (2, 3) or isinstance(attention_depth, bool):
    raise ValueError(f"attention_depth must be 2 (paper) or 3 (authors' code), got {attention_depth!r}")

  def init(fan_in):                                                           # fresh initializers for one layer
    return dict(kernel_initializer=initializers.kernel(kernel_initializer),
                bias_initializer=initializers.bias(bias_initializer, fan_in))

  features = keras.Input(shape=(None, feature_dim), name="features")          # [B, T, D]
  mask = keras.Input(shape=(None,), name="mask")                               # [B, T]
  x = temporal.MaskedFeatureCentering(name="centering")([features, mask]) if center_features else features
  # Classification branch: two temporal convolutions with LeakyReLU, then a linear layer to C+1 logits.
  h, width = x, feature_dim
  for i, units in enumerate(classifier_units):
    h = temporal.MaskedTemporalConv1D(units, kernel_size, activation="leaky_relu", negative_slope=negative_slope,
                                      name=f"cls_conv{i + 1}", **init(kernel_size * width))([h, mask])
    width = units                                                              # h: [B, T, units]
  h = keras.layers.Dropout(dropout, name="cls_dropout")(h)
  cas = keras.layers.Dense(num_classes + 1, name="cls_fc", **init(width))(h)  # [B, T, C+1]
  cas = temporal.ApplyMask(name="cas")([cas, mask]) if pool_window == 1 else \
      ZeroPaddedAveragePool(pool_window, name="cas", dtype="float32")([cas, mask])   # cumsum in float32
  # Attention branch, Eq. 4: two temporal convolutions followed by a sigmoid (the authors' code: three).
  g = temporal.MaskedTemporalConv1D(attention_units, kernel_size, activation=attention_activation,
                                    negative_slope=negative_slope, name="att_conv1",
                                    **init(kernel_size * feature_dim))([x, mask])
  if attention_depth == 3:
    g = temporal.MaskedTemporalConv1D(attention_units, kernel_size, activation=attention_activation,
                                      negative_slope=negative_slope, name="att_conv2",
                                      **init(kernel_size * attention_units))([g, mask])
    g = temporal.MaskedTemporalConv1D(1, 1, activation="sigmoid", name="att_conv3",
                                      **init(attention_units))([g, mask])                         # [B, T, 1]
  else:
    g = temporal.MaskedTemporalConv1D(1, kernel_size, activation="sigmoid", name="att_conv2",
                                      **init(kernel_size * attention_units))([g, mask])           # [B, T, 1]
  # From the sigmoid on, float32 under any mixed-precision policy (training/precision.py): these layers are cheap.
  f32 = "float32"
  attention = temporal.ApplyMask(squeeze_last=True, name="attention", dtype=f32)([g, mask])   # [B, T], 0 on padding
  if pool_window != 1:
    attention = ZeroPaddedAveragePool(pool_window, name="attention_pool", dtype=f32)([attention, mask])
  semi_soft, hard = HybridAttention(gamma, drop_mode, threshold_mode=drop_threshold_mode, name="hybrid_attention",
                                    dtype=f32)([attention, mask])
  logits, probabilities = VideoScores(top_k, name="video_scores", dtype=f32)([cas, attention, mask])
  outputs = {"cas": cas, "attention": attention,
             "semi_soft_attention": keras.layers.Identity(name="semi_soft_attention", dtype=f32)(semi_soft),
             "hard_attention": keras.layers.Identity(name="hard_attention", dtype=f32)(hard),
             "logits": keras.layers.Identity(name="logits", dtype=f32)(logits),
             "probabilities": keras.layers.Identity(name="probabilities", dtype=f32)(probabilities)}
  return keras.Model({"features": features, "mask": mask}, outputs, name=name)


# ---------------------------------------------------------------------------------------------------------------------
# Losses.
# ---------------------------------------------------------------------------------------------------------------------


def with_background(labels, background: float):
  """[B, C] multi-hot -> [B, C+1] with the background label y_{C+1} = background (1 for Eqs. 3/9, 0 for 7/8)."""
  return tf.concat([labels, tf.fill([tf.shape(labels)[0], 1], tf.cast(background, labels.dtype))], axis=-1)


def video_cross_entropy(pooled_logits, labels, normalize_labels: bool = False):
  """-sum_{j=1}^{C+1} y_j log softmax_j(v) for pooled logits v [B, C+1] and labels y [B, C+1] -> [B] (Eqs. 2-3).

  With normalize_labels, y is divided by (sum_j y_j + 1e-4) first, as the authors' code does (system/system_th.py
  `topkloss`; W-TALC's multi-label form; not the paper's Eq. 3).
  """
  labels = tf.cast(labels, pooled_logits.dtype)
  if normalize_labels:
    labels = labels / (tf.reduce_sum(labels, axis=-1, keepdims=True) + LABEL_NORMALIZATION_EPSILON)
  return -tf.reduce_sum(labels * tf.nn.log_softmax(pooled_logits, axis=-1), axis=-1)


def guided_cas(cas, attention, fill: str = "zero"):
  """s^attn_i(j) = s_i(j) * a_i (text before Eq. 5); cas [B, T, C+1], attention [B, T] -> [B, T, C+1].

  fill "segment_min" (the authors' code for the dropped attentions, `_multiply(..., include_min=True)`):
  a_i * (s_i(j) - m_i) + m_i with m_i = min_j s_i(j), so a segment with a_i = 0 gets m_i instead of 0.
  """
  if fill not in DROPPED_LOGIT_FILLS:
    raise ValueError(f"dropped_logit_fill must be one of {DROPPED_LOGIT_FILLS}, got {fill!r}")
  if fill == "zero":
    return cas * attention[..., None]
  minimum = tf.reduce_min(cas, axis=-1, keepdims=True)                       # [B, T, 1]
  return attention[..., None] * (cas - minimum) + minimum


def sparsity_loss(attention, mask):
  """Eq. 11, L_sparse = sum_i |a_i|, as a mean over the real segments (so alpha does not depend on T). -> [B]."""
  return masking.masked_mean(tf.abs(attention), mask)


def background_probability(cas):
  """Eq. 12 with the softmax over all C+1 logits: sbar_i(C+1) = exp(s_i(C+1)) / sum_{j=1}^{C+1} exp(s_i(j)).

  The paper prints the denominator as sum_{j=1}^{c}, which omits the background logit itself and is not a
  probability (it can exceed 1); we read it as the softmax over all C+1 classes. cas [B, T, C+1] -> [B, T].
  """
  return tf.nn.softmax(cas, axis=-1)[..., -1]


def guide_loss(attention, cas, mask):
  """Eq. 13, L_guide = sum_i |1 - a_i - sbar_i(C+1)|, as a mean over the real segments. -> [B]."""
  return masking.masked_mean(tf.abs(1.0 - attention - background_probability(cas)), mask)


def hamnet_losses(outputs: Dict[str, tf.Tensor], labels, mask, *, top_k: Union[int, float],
                  weights: Dict[str, float], normalize_labels: bool = False,
                  dropped_logit_fill: str = "zero") -> Dict[str, tf.Tensor]:
  """Every HAM-Net loss term per video ([B] each) and their weighted sum "total" (Eq. 10).

  Args:
    outputs: the model's outputs ("cas", "attention", "semi_soft_attention", "hard_attention").
    labels: [B, C] multi-hot video labels.
    mask: [B, T] real-segment mask.
    top_k: k of the top-k pooling (Eqs. 1, 5).
    weights: term name (LOSS_TERMS) -> weight (lambda0..3, alpha, beta); a missing term has weight 0 (it is still
      computed and returned, for monitoring, but does not enter the total).
    normalize_labels: see `video_cross_entropy`.
    dropped_logit_fill: "zero" (paper) or "segment_min" (authors' code) for L_SSAL and L_HAL, see `guided_cas`.
  """
  unknown = set(weights) - set(LOSS_TERMS)
  if unknown:
    raise ValueError(f"unknown HAM-Net loss terms {sorted(unknown)}; known: {LOSS_TERMS}")
  cas, attention = outputs["cas"], outputs["attention"]
  labels = tf.cast(labels, cas.dtype)
  y = with_background(labels, 1.0)          # background label on  (Eqs. 3, 9)
  y_fg = with_background(labels, 0.0)       # background label off (Eqs. 7, 8)

  def pooled(scores):                       # Eqs. 1 / 5: top-k mean over time
    return temporal.masked_top_k_mean(scores, mask, top_k)

  terms = {
      "bcl": video_cross_entropy(pooled(cas), y, normalize_labels),                                          # Eq. 3
      "sal": video_cross_entropy(pooled(guided_cas(cas, attention)), y_fg, normalize_labels),                # Eq. 7
      "ssal": video_cross_entropy(pooled(guided_cas(cas, outputs["semi_soft_attention"], dropped_logit_fill)),
                                  y_fg, normalize_labels),                                                     # Eq. 8
      "hal": video_cross_entropy(pooled(guided_cas(cas, outputs["hard_attention"], dropped_logit_fill)), y,
                                 normalize_labels),                                                            # Eq. 9
      "sparse": sparsity_loss(attention, mask),                                                              # Eq. 11
      "guide": guide_loss(attention, cas, mask),                                                             # Eq. 13
  }
  total = tf.zeros_like(terms["bcl"])
  for name, weight in weights.items():
    if weight:
      total = total + float(weight) * terms[name]
  terms["total"] = total                                                                                     # Eq. 10
  return terms


# ---------------------------------------------------------------------------------------------------------------------
# The task.
# ---------------------------------------------------------------------------------------------------------------------


@gin.configurable
class HAMNet:
  """HAM-Net as a task: one joint network on RGB + flow, its losses and its inference.

  Args:
    top_k: k of Eqs. 1 and 5: an int (paper: 50 on THUMOS14, 4 on ActivityNet) or a float in (0, 1), a fraction of
      the video's real segments.
    gamma: drop threshold of the semi-soft and hard attentions (paper: 0.2).
    bcl_weight, sal_weight, ssal_weight, hal_weight: lambda_0..lambda_3 of Eq. 10.
    sparsity_weight: alpha of Eq. 10.
    guide_weight: beta of Eq. 10.
    loss_terms: which terms enter Eq. 10 (paper Table 1 ablations; see TABLE1_ROWS).
    drop_mode: "selective" (paper), "random" or "inverse" (Fig. 4a baselines).
    normalize_labels: divide multi-hot labels by (their sum + 1e-4) in Eqs. 3, 7-9 (authors' code, not the paper).
    drop_threshold_mode: "absolute" (paper: a_i < gamma kept) or "relative" (authors' code: a_i < gamma max_t a_t
      kept), see `drop_masks`.
    dropped_logit_fill: "zero" (paper) or "segment_min" (authors' code), see `guided_cas`.
    attention_depth: 2 (paper) or 3 (authors' code), see `build_model`.
    pool_window: in-model average pooling of the CAS and the attention (authors' ActivityNet code: 17; 1 = none,
      the paper), see `ZeroPaddedAveragePool`.
    kernel_initializer, bias_initializer: initialization scheme names (stpn_tf/layers/initializers.py);
      'glorot_uniform' / 'zeros' are the Keras defaults, 'kaiming_uniform_leaky_relu' for both is the authors' code.
    classifier_units, attention_units, attention_activation, negative_slope, dropout, center_features: see
      `build_model`.
    streams: the feature streams concatenated into the network input.
  """

  name = "hamnet"
  video_level_outputs = ("logits", "probabilities")

  def __init__(self, top_k: Union[int, float] = 50, gamma: float = 0.2,
               bcl_weight: float = 0.8, sal_weight: float = 0.8, ssal_weight: float = 0.2, hal_weight: float = 0.2,
               sparsity_weight: float = 0.8, guide_weight: float = 0.8,
               loss_terms: Sequence[str] = LOSS_TERMS, drop_mode: str = "selective",
               normalize_labels: bool = False, classifier_units: Sequence[int] = (2048, 2048),
               attention_units: int = 512, attention_activation: str = "leaky_relu", negative_slope: float = 0.2,
               dropout: float = 0.7, center_features: bool = False, streams: Sequence[str] = ("rgb", "flow"),
               drop_threshold_mode: str = "absolute", dropped_logit_fill: str = "zero", attention_depth: int = 2,
               kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros", pool_window: int = 1):
    unknown = set(loss_terms) - set(LOSS_TERMS)
    if unknown or not loss_terms:
      raise ValueError(f"HAMNet.loss_terms must be a non-empty subset of {LOSS_TERMS}, got {loss_terms!r}")
    if drop_mode not in DROP_MODES:
      raise ValueError(f"HAMNet.drop_mode must be one of {DROP_MODES}, got {drop_mode!r}")
    if not streams or set(streams) - {"rgb", "flow"}:
      raise ValueError(f"HAMNet.streams must be a non-empty subset of ('rgb', 'flow'), got {streams!r}")
    if drop_threshold_mode not in DROP_THRESHOLD_MODES:
      raise ValueError(f"HAMNet.drop_threshold_mode must be one of {DROP_THRESHOLD_MODES}, got "
                       f"{drop_threshold_mode!r}")
    if dropped_logit_fill not in DROPPED_LOGIT_FILLS:
      raise ValueError(f"HAMNet.dropped_logit_fill must be one of {DROPPED_LOGIT_FILLS}, got {dropped_logit_fill!r}")
    if attention_depth not in (2, 3) or isinstance(attention_depth, bool):
      raise ValueError(f"HAMNet.attention_depth must be 2 (paper) or 3 (authors' code), got {attention_depth!r}")
    initializers.get(kernel_initializer)
    initializers.get(bias_initializer)
    temporal.resolve_top_k(top_k, tf.ones([1]))
    self.top_k = top_k
    self.gamma = float(gamma)
    self.dropped_logit_fill = dropped_logit_fill
    all_weights = {"bcl": bcl_weight, "sal": sal_weight, "ssal": ssal_weight, "hal": hal_weight,
                   "sparse": sparsity_weight, "guide": guide_weight}
    self.loss_terms = tuple(t for t in LOSS_TERMS if t in loss_terms)
    self.weights = {t: float(all_weights[t]) for t in self.loss_terms}
    self.drop_mode = drop_mode
    self.normalize_labels = bool(normalize_labels)
    self._streams = tuple(streams)
    self.model_kwargs = dict(top_k=top_k, gamma=self.gamma, drop_mode=drop_mode,
                             classifier_units=tuple(int(u) for u in classifier_units),
                             attention_units=int(attention_units), attention_activation=attention_activation,
                             negative_slope=float(negative_slope), dropout=float(dropout),
                             center_features=bool(center_features), drop_threshold_mode=drop_threshold_mode,
                             attention_depth=int(attention_depth), kernel_initializer=str(kernel_initializer),
                             bias_initializer=str(bias_initializer), pool_window=pool_window)
    ZeroPaddedAveragePool(pool_window)      # validates the window

  @property
  def networks(self):
    """One joint network reading the concatenated streams."""
    return {"hamnet": "+".join(self._streams)}

  @property
  def streams(self):
    return self._streams

  def build_models(self, num_classes: int, feature_dims: Dict[str, int]) -> Dict[str, keras.Model]:
    dim = sum(int(feature_dims[s]) for s in self._streams)
    return {"hamnet": build_model(dim, num_classes, name="hamnet", **self.model_kwargs)}

  def network_inputs(self, network: str, batch: Dict[str, tf.Tensor]):
    parts = [batch[s] for s in self._streams]
    features = parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)
    return {"features": tf.convert_to_tensor(features, tf.float32),
            "mask": tf.convert_to_tensor(batch["mask"], tf.float32)}

  def losses(self, network: str, outputs, batch) -> Dict[str, tf.Tensor]:
    return hamnet_losses(outputs, batch["labels"], batch["mask"], top_k=self.top_k, weights=self.weights,
                         normalize_labels=self.normalize_labels, dropped_logit_fill=self.dropped_logit_fill)

  def video_probabilities(self, outputs_by_network: Dict[str, Dict[str, np.ndarray]]) -> np.ndarray:
    """p^attn of the C real classes (Eq. 6), the video-level scores HAM-Net thresholds at inference."""
    return np.asarray(outputs_by_network["hamnet"]["probabilities"])

  def detect(self, outputs_by_network: Dict[str, Dict[str, np.ndarray]], feature_rate: float):
    out = outputs_by_network["hamnet"]
    return hamnet_detect(out["attention"], out["cas"], out["probabilities"], feature_rate)
