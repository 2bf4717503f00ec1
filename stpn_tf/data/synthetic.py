"""A deterministic synthetic THUMOS14-like dataset: the default data of the training binaries.

Real THUMOS14 I3D features cannot be downloaded here, so this module draws two-stream features from a generative
model whose parts correspond to the difficulties the WTAL papers address. Every number is a field of
`SyntheticConfig`; the presets (`THUMOS14`, `TINY`, `TINY_V4`, `THUMOS14_V3`, `THUMOS14_V2`) are named instances
of it.

Generator v4 (GENERATOR_VERSION 4, the default data, preset `thumos14`) is v3's feature model below with a
harder, class-bearing background (the `THUMOS14` preset's overrides: confusable non-target actions and
distractors, class evidence concentrated in an instance's middle, long motion-poor lead-in / follow-through that
shows the class's core unit); v3 stays available as preset `thumos14_v3` (the `SyntheticConfig` defaults).

Generative model (introduced at GENERATOR_VERSION 3, `feature_model = 'sparse_parts'`). An I3D feature is the
spatio-temporal average of the ReLU responses of 1024 learned channels: non-negative, with a large always-on
component, each visual concept (a scene, an object, a motion, a sub-action) driving a few channels strongly. So
each stream s in {rgb, flow} gets a dictionary of sparse non-negative channel patterns (each drives ~4% of the
channels, `pattern_density`, mean magnitude 1 on them):

  World (drawn once from the seed, shared by both splits):
    b_s    [D]     always-on response of every channel, Gamma(base_shape) with mean base_mean: the shared component
    A_s    [D]     generic motion / person-in-action pattern, shared by all classes (strong in flow)
    P_c,k  [D]     unit k in {start, middle, end} of class c: middle = core_c = rho F_family(c) + (1 - rho) own_c;
                   start / end = phi core_c + (1 - phi) H_family(c),k: similar classes share sub-actions (the run-up
                   of the jumps, the wind-up of the throws), and an action's ends look like its family's
    Q_c    [D]     class-typical scene (shared by a scene family: pools, cricket grounds, stadiums), R_j generic scenes
    X_j    [D]     non-target actions, N_j nuisance patterns (camera motion, zoom, crowd, graphics)

  Video v, segment t (events e as below; O, u, envelopes as in v2):
    context_t = b_s * o_v + scene_s * S_shot(t) + nuis_s * sum_j w_j(t) N_j
    action_t  = act_s * sum_e act_w(t,e) A_s + cls_s * sum_{e,k} cls_w(t,e,k) P_{c_e,k} * style_v,c * jitter_e
    x_t       = g_v * [(1 - occ * min(1, sum_e act_w(t,e))) * context_t + action_t] * n_t
  o_v: per-video per-channel log-normal gain (camera, lighting); S: the shot's scene (class-typical mixed with a
  generic one, or a cutaway), present in background too, so rgb background carries the class; w_j >= 0 smooth in
  time; style and jitter are per-channel log-normal (non-negative); n_t: mean-one log-normal per-entry noise,
  smoothed over neighbouring segments (I3D windows overlap). `occ` (`foreground_occlusion`): where an action fills
  the frame, the spatial average holds its responses *instead of* most of the context's (an athlete hides the
  scene), so an action changes which channels are active more than how much activation there is. This is what
  decides whether the printed methods learn at all (BUILD_NOTES.md, "Built-in benchmark v3"): with occ = 0 (action
  responses added on top of the context) BGM's and HAM-Net's attention collapse to 0 as on v2.

Generator v2 (`feature_model = 'dense_latent'`, preset `thumos14_v2`) is kept for that comparison. There each
stream has a latent space of dimension r (`latent_dim`) with unit-norm latent vectors and unit-variance latent
noise, so a `*_strength` is a per-segment signal-to-noise ratio along its direction:

  World:
    M_s    [r, D]  Gaussian projection, entries N(0, proj_scale^2)
    mu_s   [D]     per-dimension offset, Gamma(mean_shape, mean_scale) - mean_shift: post-ReLU-like activations
    A_s, core_c, P_c,k, Q_c, R_j, X_j  [r]  as above, as unit vectors of the latent space

  Video v: T segments and events e (labeled instances, unlabeled true instances, lead-in / follow-through context,
  distractors, other actions); O[t, e] is the share of segment t covered by event e, u[t, e] in [0, 1] the
  position of the segment's centre inside the event, m_t a smooth random intensity modulation (pauses):
    z_t = act_s * m_t sum_e O[t,e] a_e env_act(u) A_s                                            [r] actionness
        + cls_s * m_t sum_e O[t,e] c_e env_cls(u) sum_k h_k(u) (P_{c_e,k} + style_v,c + jitter_e)   class evidence
        + scene_s * S_shot(t)   S = unit(beta_v Q_c(v) + (1 - beta_v) R_j(v) + shot jitter); cutaway shots show a
                                generic scene only. Present in background too, so rgb background leaks the class.
        + offset_s * V_v        per-video nuisance (camera, lighting), constant in time
        + n_t                   temporally smoothed N(0, I_r) (Gaussian kernel of `noise_smooth_segments`)
    x_t = g_v * relu(mu_s + z_t M_s + iso_noise * (eps_t + eps_{t-1}) / sqrt(2))        [T, D] float32, >= 0
  env_cls ramps from `class_edge_floor` at an event's ends to 1 in its middle (the ends are less discriminative;
  `class_ramp_power` > 1 bends the ramp so that the evidence concentrates in the middle) while env_act stays
  higher; h_k are hat functions of u blending the three phases. Distractors are background
  stretches with a weak copy (a_e, c_e < 1) of the video's class or a similar one; other actions carry actionness
  with a non-target prototype X_j; unlabeled instances are real actions missing from the ground truth; context
  events sit just before / after an instance with weaker actionness and only its start / end phase (run-up,
  replay), so an action's extent is ambiguous. g_v ~ LogNormal(0, gain_log_std) per video and stream. Both
  feature models share this event layout and these envelopes.

Layout: durations are log-normal (seconds), T = floor(duration * rate); instance counts come from a per-video
log-normal rate per minute; instance lengths are log-normal around a per-class median (THUMOS14's medians, with a
rare long tail); events are placed without overlap in random order with Dirichlet-distributed gaps (small
`gap_concentration` clusters instances, as repeated attempts in sports videos are); in multi-class videos some
instances get a co-occurring instance of another video class over nearly the same interval.

Determinism: the world comes from SeedSequence([seed, 0]) and video i of a split from
SeedSequence([seed, split code, i]), so any video can be regenerated alone and the order of generation is irrelevant.
"""

import contextlib
import dataclasses
import os
import time
from typing import Dict, Iterator, Optional, Sequence, Tuple, Union

from absl import logging
import numpy as np

from stpn_tf.data import schema

# Bump when a change makes the same (preset, seed) produce different data: cached directories carry this number.
GENERATOR_VERSION = 4

THUMOS14_CLASSES = (
    "BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk", "CliffDiving", "CricketBowling", "CricketShot",
    "Diving", "FrisbeeCatch", "GolfSwing", "HammerThrow", "HighJump", "JavelinThrow", "LongJump", "PoleVault",
    "Shotput", "SoccerPenalty", "TennisSwing", "ThrowDiscus", "VolleyballSpiking")

# Median instance length (seconds) per class, measured on the THUMOS14 validation + test annotations.
THUMOS14_MEDIAN_LENGTH_S = (
    3.0, 1.5, 2.2, 8.7, 2.7, 1.2, 1.1, 2.5, 2.3, 4.2, 7.1, 4.5, 6.3, 7.1, 6.4, 4.7, 2.9, 1.5, 4.3, 1.7)

# Classes whose motion looks alike (they share a family prototype and start/end phases). These are also the pairs
# that co-occur in real THUMOS14 videos (CliffDiving/Diving, CricketBowling/CricketShot, Shotput/ThrowDiscus, ...).
ACTION_FAMILIES = (
    ("CliffDiving", "Diving"),
    ("CricketBowling", "CricketShot"),
    ("Shotput", "ThrowDiscus", "HammerThrow", "JavelinThrow"),
    ("HighJump", "LongJump", "PoleVault"),
    ("GolfSwing", "TennisSwing"),
)
# Classes filmed in similar places (they share a family scene vector): pools, cricket grounds, athletics stadiums.
SCENE_FAMILIES = (
    ("CliffDiving", "Diving"),
    ("CricketBowling", "CricketShot"),
    ("Shotput", "ThrowDiscus", "HammerThrow", "JavelinThrow", "HighJump", "LongJump", "PoleVault"),
)

SPLITS = ("train", "test")
_SPLIT_CODE = {"train": 1, "test": 2}
_VIDEO_ID_PREFIX = {"train": "video_validation_", "test": "video_test_"}
# Event kinds.
_GT, _UNLABELED, _DISTRACTOR, _OTHER, _CONTEXT = 0, 1, 2, 3, 4
_NUM_PHASES = 3   # start, middle, end


@dataclasses.dataclass(frozen=True)
class StreamConfig:
  """Signal strengths of one stream, in units of the latent noise (see the module docstring)."""
  actionness_strength: float      # generic motion inside any action-like event
  class_strength: float           # class prototype at the middle of an instance
  scene_strength: float           # per-shot scene, present in background as well
  video_offset_strength: float    # constant per-video nuisance vector
  iso_noise: float                # full-rank per-dimension noise added after the projection
  proj_scale: float = 0.07        # per-dimension std of a unit latent vector after projection
  mean_shape: float = 2.0         # per-dimension offset mu = Gamma(shape, scale) - mean_shift
  mean_scale: float = 0.1
  mean_shift: float = 0.0         # > 0 makes features sparser (more exact zeros after the ReLU)
  # feature_model = 'sparse_parts' only (v3): strengths above are then activations added on a pattern's channels.
  base_mean: float = 0.3          # mean always-on response of a channel (the shared component)
  base_shape: float = 1.0         # Gamma shape of the per-channel always-on response (small = skewed, sparse)
  nuisance_strength: float = 0.5  # smooth background variability (camera motion, crowd, graphics)
  foreground_occlusion: Optional[float] = None   # this stream's share of the context an action hides (sparse_parts;
                                                 # None: SyntheticConfig.foreground_occlusion)
  context_class_scale: float = 1.0  # sparse_parts: this stream's share of a context event's class evidence (a run-up
                                    # or replay shows the athlete and apparatus to rgb, not the action's motion to flow)


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """Every knob of the generator; the field defaults are generator v3. Presets: THUMOS14 (v4, the default data),
  THUMOS14_V3 (the defaults), THUMOS14_V2 (v2 features, same layout) and TINY (tests; v2 features)."""
  class_names: Tuple[str, ...] = THUMOS14_CLASSES
  median_length_s: Tuple[float, ...] = THUMOS14_MEDIAN_LENGTH_S   # per class, aligned with class_names
  action_families: Tuple[Tuple[str, ...], ...] = ACTION_FAMILIES
  scene_families: Tuple[Tuple[str, ...], ...] = SCENE_FAMILIES
  num_videos: Tuple[Tuple[str, int], ...] = (("train", 200), ("test", 212))
  feature_dim: int = 1024
  feature_rate: float = schema.THUMOS14_FEATURE_RATE
  videos_per_shard: int = 64

  # Durations: log-normal seconds, clipped.
  duration_log_mean: float = 4.98          # exp(4.98) = 145 s median; THUMOS14 mean 3.5 min
  duration_log_std: float = 0.88
  min_duration_s: float = 10.0
  max_duration_s: float = 1500.0

  # Labels.
  multi_label_prob: float = 0.12           # share of videos with 2+ classes (exact per split, rounded)
  third_label_prob: float = 0.1            # given 2+, it has 3
  family_partner_prob: float = 0.85        # the extra class comes from the primary class's action family
  secondary_class_weight: Tuple[float, float] = (0.3, 0.8)   # share of instances of an extra class, uniform range
  cooccur_prob: float = 0.3                # in multi-class videos: an instance gets an overlapping twin

  # Instances.
  instances_per_minute_log_mean: float = 1.25   # exp(1.25) = 3.5 per minute median
  instances_per_minute_log_std: float = 0.8
  length_log_std: float = 0.55             # within-class spread of instance length
  long_instance_prob: float = 0.01         # rare long instances (x4.5 to x27): lengths up to minutes
  min_length_s: float = 0.3
  max_coverage: float = 0.8                # labeled + unlabeled instances cover at most this share of a video
  gap_concentration: float = 0.4           # Dirichlet alpha of the gaps: < 1 clusters events
  unlabeled_instance_prob: float = 0.04    # a real instance missing from the ground truth

  # Background confusers.
  distractors_per_instance: float = 0.35   # weak copies of a class in background (Poisson mean per instance)
  distractor_same_class_prob: float = 0.6  # else a similar (same family) or random class
  distractor_class_mult: Tuple[float, float] = (0.25, 0.65)
  distractor_actionness_mult: Tuple[float, float] = (0.3, 0.8)
  other_actions_per_minute: float = 1.0    # non-target actions (actionness + an unknown prototype)
  other_action_length_s: float = 3.0
  other_action_actionness_mult: Tuple[float, float] = (0.5, 1.0)
  num_other_actions: int = 40

  # Shape of an instance.
  class_edge_floor: float = 0.15           # class evidence at an instance's ends, relative to its middle
  class_ramp_fraction: float = 0.4         # share of the instance (each end) over which class evidence ramps up
  class_ramp_power: float = 1.0            # > 1: the ramp is ramp ** power, class evidence peaks in the middle
  actionness_edge_floor: float = 0.5      # actionness at an instance's ends, relative to its middle
  actionness_ramp_fraction: float = 0.25
  phase_width: float = 0.3                 # start/end phases occupy this share of the instance at each end
  instance_strength_log_std: float = 0.25  # per-instance multiplier of class and actionness strength
  intensity_modulation: float = 0.35      # std of a smooth multiplicative modulation of every event's signal
  context_prob: float = 0.8                # each side of an instance has lead-in / follow-through context
  context_length_fraction: Tuple[float, float] = (0.3, 1.0)   # of the instance's length, uniform range
  context_actionness_mult: Tuple[float, float] = (0.5, 0.9)
  context_class_mult: Tuple[float, float] = (0.2, 0.4)
  context_core_share: float = 0.0          # sparse_parts: share of the class's middle (core) unit in a context
                                           # event's start / end unit (the run-up looks like the jump itself)

  # Feature model: 'sparse_parts' (v3: non-negative sparse channel patterns, the default) or 'dense_latent'
  # (v2: a 64-d latent space through a Gaussian projection and a ReLU).
  feature_model: str = "sparse_parts"
  pattern_density: float = 0.04            # share of the channels a pattern (unit, scene, motion) drives
  pattern_shape: float = 2.0               # Gamma shape of a pattern's active magnitudes
  num_nuisance_patterns: int = 16
  nuisance_smooth_segments: float = 8.0    # temporal std (segments) of the nuisance weights
  foreground_occlusion: float = 0.9        # share of the context (always-on, scene, nuisance) an action hides
  feature_scale: float = 1.0               # global scale of every feature (sparse_parts)

  # Latent structure.
  latent_dim: int = 64
  family_share: float = 0.5                # rho: squared cosine shared by classes of one action family
  phase_class_share: float = 0.4           # phi: how much of the class prototype the start/end phases keep
  video_style: float = 0.25                # per-(video, class) perturbation of the prototypes, relative
  instance_jitter: float = 0.25            # per-instance perturbation of the prototype, relative
  scene_family_share: float = 0.6
  num_generic_scenes: int = 48
  scene_class_mix: Tuple[float, float] = (2.0, 2.0)   # beta_v ~ Beta(a, b): weight of the class-typical scene
  shot_length_s: float = 20.0              # mean shot length (exponential)
  cutaway_prob: float = 0.2                # a shot shows a generic scene only
  shot_jitter: float = 0.3
  noise_smooth_segments: float = 2.0       # std (segments) of the Gaussian kernel smoothing the latent noise
  gain_log_std: float = 0.1                # per-video, per-stream feature scale

  # v3 (sparse_parts) strengths: activation added on each of a pattern's channels, against an always-on response
  # of mean base_mean; iso_noise is the per-entry coefficient of variation, video_offset_strength the per-video,
  # per-channel log-normal gain std. RGB sees scenes and objects, flow sees motion (actionness).
  rgb: StreamConfig = StreamConfig(
      actionness_strength=0.5, class_strength=1.0, scene_strength=1.0, video_offset_strength=0.3, iso_noise=0.35,
      base_mean=0.3, nuisance_strength=0.4)
  flow: StreamConfig = StreamConfig(
      actionness_strength=1.5, class_strength=1.5, scene_strength=0.2, video_offset_strength=0.2, iso_noise=0.35,
      base_mean=0.25, nuisance_strength=0.6)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def split_sizes(self) -> Dict[str, int]:
    return dict(self.num_videos)


# Generator v3 (GENERATOR_VERSION 3): the field defaults. Easy for a T-CAM (STPN ~51 mAP@0.5, far above the paper's
# real-THUMOS14 16.9); kept by name so that v3 numbers can be reproduced and the v4 candidates of
# tools/generator_variants.json stay defined relative to it.
THUMOS14_V3 = SyntheticConfig()

# Generator v4 (GENERATOR_VERSION 4), the default data: candidate "V8" of BUILD_NOTES.md "Towards v4 (session 5)",
# chosen in session 6 because on it, alone of the twelve candidates, a converged STPN lands in the paper's
# real-THUMOS14 range (mAP@0.5 24.5 / 20.2 on dataset seeds 1 / 2) and HAM-Net as printed learns and beats it. Each
# override below models a real phenomenon (BUILD_NOTES.md "Built-in benchmark v4"):
THUMOS14 = dataclasses.replace(
    THUMOS14_V3,
    # Confusable background: other sports actions (replays, warm-ups, spectators) three times a minute, with
    # motion like the targets'; one weak copy of a class per instance (a practice swing, a failed attempt).
    other_actions_per_minute=3.0, other_action_actionness_mult=(0.7, 1.2),
    distractors_per_instance=1.0, distractor_class_mult=(0.4, 0.9),
    # The most discriminative part of an instance is its middle: class evidence 5% at the ends, ramping over half.
    class_edge_floor=0.05, class_ramp_fraction=0.5,
    # Lead-in / follow-through around nearly every instance, as long as the instance itself (the run-up before a
    # jump, the replay after a dive), showing 80% of the class's core unit with little motion: the class is in
    # the context, not only in the instance (what makes real T-CAMs over-run and merge instances).
    context_prob=0.95, context_length_fraction=(0.6, 1.6), context_class_mult=(0.4, 0.8),
    context_actionness_mult=(0.15, 0.4), context_core_share=0.8,
    # Strong per-segment evidence (fully supervised detectors reach ~71 mAP@0.5 on real I3D features); flow carries
    # motion and camera motion (nuisance), rgb the class and its scene.
    rgb=dataclasses.replace(THUMOS14_V3.rgb, class_strength=3.0, actionness_strength=1.5),
    flow=dataclasses.replace(THUMOS14_V3.flow, class_strength=3.0, actionness_strength=4.0, nuisance_strength=1.2),
)

# Generator v2 (GENERATOR_VERSION 2, feature_model 'dense_latent'), kept for the comparison of feature families in
# BUILD_NOTES.md ("Built-in benchmark v3"): the same layout, features from a dense 64-d latent space.
THUMOS14_V2 = dataclasses.replace(
    THUMOS14_V3, feature_model="dense_latent",
    rgb=StreamConfig(actionness_strength=2.5, class_strength=3.0, scene_strength=2.0, video_offset_strength=0.8,
                     iso_noise=0.15),
    flow=StreamConfig(actionness_strength=3.5, class_strength=4.0, scene_strength=0.5, video_offset_strength=0.5,
                      iso_noise=0.15))

_TINY_CLASSES = ("Billiards", "Diving", "HighJump", "TennisSwing")
# The tests' preset. It keeps generator v2's feature family (dense latent), exactly as at GENERATOR_VERSION 2: the
# learning tests' regimes (STPN's attention rising on actions in 500 steps, BGM as printed collapsing for the
# collapse-guard test) were written for it. A v3 (sparse parts, occlusion 0.9) tiny preset is not calibrated yet:
# on it STPN's attention preferred background in that test (fg 0.62 / bg 0.71), and with occlusion 0 it saturated
# (fg 1.00 / bg 0.88, classification mAP 0.79); BUILD_NOTES.md "Built-in benchmark v3".
TINY = dataclasses.replace(
    THUMOS14_V2,
    class_names=_TINY_CLASSES,
    median_length_s=tuple(THUMOS14_MEDIAN_LENGTH_S[THUMOS14_CLASSES.index(c)] * 1.5 for c in _TINY_CLASSES),
    num_videos=(("train", 32), ("test", 16)),
    videos_per_shard=16,
    # 30 to 150 segments at 25/16 per second.
    duration_log_mean=float(np.log(60.0)), duration_log_std=0.4, min_duration_s=19.5, max_duration_s=95.0,
    multi_label_prob=0.1, instances_per_minute_log_mean=float(np.log(4.0)), instances_per_minute_log_std=0.4,
    long_instance_prob=0.0, unlabeled_instance_prob=0.0,
    distractors_per_instance=0.05, other_actions_per_minute=0.15, class_edge_floor=0.6, context_prob=0.2,
    intensity_modulation=0.1,
    video_style=0.2, instance_jitter=0.15, gain_log_std=0.05,
    # Sparser features (mean_shift) keep a plain attention model on raw features from collapsing its attention.
    rgb=dataclasses.replace(THUMOS14_V2.rgb, class_strength=7.0, actionness_strength=3.0, scene_strength=0.5,
                            video_offset_strength=0.3, mean_shift=0.3),
    flow=dataclasses.replace(THUMOS14_V2.flow, class_strength=9.0, actionness_strength=5.0, video_offset_strength=0.3,
                             mean_shift=0.3),
)

# The tiny layout (same classes, videos, durations and easy confusers as TINY) with v4's sparse-parts features and
# stream strengths: the data of the learning tests that train a network as printed. On it HAM-Net as printed
# (center_features = False) learns in 200 steps (attention AUC 0.96, classification mAP 0.98 at lr 3e-4), where on
# TINY's dense-latent features its attention collapses; BGM as printed still ends with a flow attention that follows
# the feature mass (BUILD_NOTES.md "Built-in benchmark v4").
TINY_V4 = dataclasses.replace(
    THUMOS14,
    **{f: getattr(TINY, f) for f in (
        "class_names", "median_length_s", "num_videos", "videos_per_shard", "duration_log_mean", "duration_log_std",
        "min_duration_s", "max_duration_s", "multi_label_prob", "instances_per_minute_log_mean",
        "instances_per_minute_log_std", "long_instance_prob", "unlabeled_instance_prob", "distractors_per_instance",
        "other_actions_per_minute", "class_edge_floor", "context_prob", "intensity_modulation", "video_style",
        "instance_jitter", "gain_log_std")})

# Generator v4 (the THUMOS14 preset: all 20 classes, every confuser) cut to 64 training / 24 test videos of TINY's
# 20-95 s: the data of BGM's learning test, which trains bgm.gin as printed. BGM as printed learns on it (4,000
# one-video steps, test attention AUC 0.69-0.76 in both streams over training seeds), where on every 4-class set
# measured (`tiny_v4`; v4 cut to TINY's 4 classes, with 32 or 64 videos) its flow attention ends inverted (AUC
# 0.06-0.25; BUILD_NOTES.md "Built-in benchmark v4", session 8).
SMALL_V4 = dataclasses.replace(
    THUMOS14,
    num_videos=(("train", 64), ("test", 24)), videos_per_shard=32,
    **{f: getattr(TINY, f) for f in ("duration_log_mean", "duration_log_std", "min_duration_s", "max_duration_s")})

PRESETS = {"thumos14": THUMOS14, "tiny": TINY, "tiny_v4": TINY_V4, "small_v4": SMALL_V4, "thumos14_v3": THUMOS14_V3,
           "thumos14_v2": THUMOS14_V2}


def get_config(preset: Union[str, SyntheticConfig]) -> SyntheticConfig:
  """Returns a preset by name (or the config itself)."""
  if isinstance(preset, SyntheticConfig):
    return preset
  if preset not in PRESETS:
    raise ValueError(f"unknown synthetic preset {preset!r}; choose one of {sorted(PRESETS)}")
  return PRESETS[preset]


# ------------------------------------------------------------------------------------------------- the world


def _unit(x: np.ndarray) -> np.ndarray:
  """Normalizes the last axis to unit L2 norm."""
  return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _family_index(names: Sequence[str], families: Sequence[Sequence[str]]) -> np.ndarray:
  """[C] int: the family of each class, singleton classes getting their own index."""
  index = {}
  for f, family in enumerate(families):
    for name in family:
      index[name] = f
  next_id = len(families)
  out = []
  for name in names:
    if name not in index:
      index[name] = next_id
      next_id += 1
    out.append(index[name])
  return np.asarray(out)


@dataclasses.dataclass
class _StreamWorld:
  projection: np.ndarray     # [r, D]
  mean: np.ndarray           # [D]
  actionness: np.ndarray     # [r]
  phases: np.ndarray         # [C, K, r] class prototypes per phase (middle = core)
  class_scenes: np.ndarray   # [C, r]
  generic_scenes: np.ndarray # [S, r]
  other_actions: np.ndarray  # [X, r]


@dataclasses.dataclass
class _World:
  config: SyntheticConfig
  action_family: np.ndarray  # [C]
  streams: Dict[str, object]         # _StreamWorld (dense_latent) or _PartsWorld (sparse_parts)


def _make_stream_world(cfg: SyntheticConfig, scfg: StreamConfig, rng: np.random.Generator,
                       action_family: np.ndarray, scene_family: np.ndarray) -> _StreamWorld:
  r, d, c = cfg.latent_dim, cfg.feature_dim, cfg.num_classes
  gauss = lambda *shape: rng.standard_normal(shape, dtype=np.float32)
  projection = gauss(r, d) * np.float32(scfg.proj_scale)
  mean = (rng.gamma(scfg.mean_shape, scfg.mean_scale, size=d) - scfg.mean_shift).astype(np.float32)
  actionness = _unit(gauss(r))
  fam = _unit(gauss(int(action_family.max()) + 1, r))                      # [F, r]
  core = _unit(np.sqrt(cfg.family_share) * fam[action_family] + np.sqrt(1 - cfg.family_share) * _unit(gauss(c, r)))
  fam_phase = _unit(gauss(int(action_family.max()) + 1, 2, r))             # [F, 2, r] start/end of each family
  ends = _unit(np.sqrt(cfg.phase_class_share) * core[:, None, :]
               + np.sqrt(1 - cfg.phase_class_share) * fam_phase[action_family])   # [C, 2, r]
  phases = np.stack([ends[:, 0], core, ends[:, 1]], axis=1)                 # [C, K=3, r]
  scene_fam = _unit(gauss(int(scene_family.max()) + 1, r))
  class_scenes = _unit(np.sqrt(cfg.scene_family_share) * scene_fam[scene_family]
                       + np.sqrt(1 - cfg.scene_family_share) * _unit(gauss(c, r)))
  return _StreamWorld(projection=projection, mean=mean, actionness=actionness, phases=phases,
                      class_scenes=class_scenes, generic_scenes=_unit(gauss(cfg.num_generic_scenes, r)),
                      other_actions=_unit(gauss(cfg.num_other_actions, r)))


def _make_world(cfg: SyntheticConfig, seed: int) -> _World:
  if len(cfg.median_length_s) != cfg.num_classes:
    raise ValueError(f"median_length_s has {len(cfg.median_length_s)} entries for {cfg.num_classes} classes")
  rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
  action_family = _family_index(cfg.class_names, cfg.action_families)
  scene_family = _family_index(cfg.class_names, cfg.scene_families)
  if cfg.feature_model not in _FEATURE_MODELS:
    raise ValueError(f"unknown feature_model {cfg.feature_model!r}; choose one of {sorted(_FEATURE_MODELS)}")
  make_stream = _FEATURE_MODELS[cfg.feature_model][0]
  streams = {s: make_stream(cfg, getattr(cfg, s), rng, action_family, scene_family) for s in schema.STREAMS}
  return _World(config=cfg, action_family=action_family, streams=streams)


# ------------------------------------------------------------------------------------------------ one video


@dataclasses.dataclass
class _Events:
  """Action-like events of one video, all arrays [E]."""
  start: np.ndarray          # seconds
  end: np.ndarray
  kind: np.ndarray           # _GT, _UNLABELED, _DISTRACTOR, _OTHER, _CONTEXT
  label: np.ndarray          # class index (the X_j index for _OTHER)
  class_mult: np.ndarray     # class-evidence multiplier
  act_mult: np.ndarray       # actionness multiplier
  phase: np.ndarray          # -1: phases blend along the event; k >= 0: phase k throughout (context)


def _video_labels(cfg: SyntheticConfig, world: _World, primary: int, multi: bool,
                  rng: np.random.Generator) -> np.ndarray:
  """[L] int: the primary class first, then 0-2 extra classes (mostly from the primary's action family)."""
  labels = [primary]
  if multi:
    extra = 2 if rng.random() < cfg.third_label_prob else 1
    for _ in range(extra):
      family = np.flatnonzero(world.action_family == world.action_family[primary])
      candidates = np.setdiff1d(family, labels)
      if not (candidates.size and rng.random() < cfg.family_partner_prob):
        candidates = np.setdiff1d(np.arange(cfg.num_classes), labels)
      if candidates.size:
        labels.append(int(rng.choice(candidates)))
  return np.asarray(labels, np.int64)


def _lengths(cfg: SyntheticConfig, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """[N] instance lengths in seconds for the given classes (log-normal around the class median, rare long tail)."""
  medians = np.asarray(cfg.median_length_s, np.float64)[classes]
  lengths = medians * np.exp(cfg.length_log_std * rng.standard_normal(classes.size))
  long = rng.random(classes.size) < cfg.long_instance_prob
  lengths[long] *= np.exp(rng.uniform(1.5, 3.3, size=int(long.sum())))
  return np.maximum(lengths, cfg.min_length_s)


def _place(lengths: np.ndarray, span: float, alpha: float, rng: np.random.Generator) -> np.ndarray:
  """[E] starts of non-overlapping events of the given lengths (in this order) inside [0, span].

  The free time is split into E + 1 gaps by a Dirichlet(alpha) draw, so events keep their order and never overlap.
  """
  free = max(span - float(lengths.sum()), 0.0)
  gaps = rng.dirichlet(np.full(lengths.size + 1, alpha)) * free
  return np.cumsum(gaps[:-1]) + np.concatenate([[0.0], np.cumsum(lengths)[:-1]])


def _make_events(cfg: SyntheticConfig, world: _World, labels: np.ndarray, span: float,
                 rng: np.random.Generator) -> _Events:
  """Draws and places the instances, unlabeled instances, distractors and other actions of one video."""
  minutes = span / 60.0
  rate = np.exp(cfg.instances_per_minute_log_mean + cfg.instances_per_minute_log_std * rng.standard_normal())
  n = max(labels.size, int(rng.poisson(rate * minutes)))
  # Class of each instance: every video class at least once, then drawn by per-class weights.
  weights = np.concatenate([[1.0], rng.uniform(*cfg.secondary_class_weight, size=labels.size - 1)])
  classes = np.concatenate([labels, rng.choice(labels, size=n - labels.size, p=weights / weights.sum())])
  lengths = _lengths(cfg, classes, rng)
  lengths = np.minimum(lengths, cfg.max_coverage * span)
  # Keep the instances (the first ones carry every label once) that fit within max_coverage of the video.
  keep = np.cumsum(lengths) <= cfg.max_coverage * span
  keep[:labels.size] = True
  classes, lengths = classes[keep], lengths[keep]
  # The forced first instances of a short multi-class video may still overflow: shrink them all to fit.
  lengths *= min(1.0, cfg.max_coverage * span / lengths.sum())
  kind = np.where(rng.random(classes.size) < cfg.unlabeled_instance_prob, _UNLABELED, _GT)
  kind[:labels.size] = _GT                 # every video label keeps at least one ground-truth instance
  class_mult = np.exp(cfg.instance_strength_log_std * rng.standard_normal(classes.size))
  act_mult = np.exp(cfg.instance_strength_log_std * rng.standard_normal(classes.size))

  # Distractors: weak copies of the video's class (or a similar / random one) in background.
  n_dis = int(rng.poisson(cfg.distractors_per_instance * classes.size))
  dis_class = rng.choice(labels, size=n_dis)
  other = rng.random(n_dis) >= cfg.distractor_same_class_prob
  for i in np.flatnonzero(other):          # at most a handful per video
    family = np.flatnonzero(world.action_family == world.action_family[dis_class[i]])
    pool = family if family.size > 1 else np.arange(cfg.num_classes)
    dis_class[i] = rng.choice(pool)
  # Other (non-target) actions: actionness plus a prototype no target class has.
  n_oth = int(rng.poisson(cfg.other_actions_per_minute * minutes))
  oth_index = rng.integers(0, cfg.num_other_actions, size=n_oth)
  oth_len = np.maximum(cfg.other_action_length_s * np.exp(cfg.length_log_std * rng.standard_normal(n_oth)),
                       cfg.min_length_s)

  kind = np.concatenate([kind, np.full(n_dis, _DISTRACTOR), np.full(n_oth, _OTHER)])
  label = np.concatenate([classes, dis_class, oth_index]).astype(np.int64)
  lengths = np.concatenate([lengths, _lengths(cfg, dis_class, rng), oth_len])
  class_mult = np.concatenate([class_mult, rng.uniform(*cfg.distractor_class_mult, size=n_dis), np.ones(n_oth)])
  act_mult = np.concatenate([act_mult, rng.uniform(*cfg.distractor_actionness_mult, size=n_dis),
                             rng.uniform(*cfg.other_action_actionness_mult, size=n_oth)])
  # Background confusers only fill what the instances leave: drop them from the end when the video is full.
  fits = (kind < _DISTRACTOR) | (np.cumsum(lengths) <= 0.95 * span)
  kind, label, lengths, class_mult, act_mult = (a[fits] for a in (kind, label, lengths, class_mult, act_mult))

  order = rng.permutation(kind.size)
  kind, label, lengths, class_mult, act_mult = (a[order] for a in (kind, label, lengths, class_mult, act_mult))
  start = _place(lengths, span, cfg.gap_concentration, rng)
  end = start + lengths

  # Lead-in and follow-through context around real instances (run-up, replay, celebration): actionness and the
  # start / end phase of the class, weaker, outside the ground truth, so extents are ambiguous.
  real = np.flatnonzero(kind <= _UNLABELED)
  pre = real[rng.random(real.size) < cfg.context_prob]
  post = real[rng.random(real.size) < cfg.context_prob]
  pre_len = rng.uniform(*cfg.context_length_fraction, size=pre.size) * (end[pre] - start[pre])
  post_len = rng.uniform(*cfg.context_length_fraction, size=post.size) * (end[post] - start[post])
  ctx_start = np.concatenate([np.maximum(start[pre] - pre_len, 0.0), end[post]])
  ctx_end = np.concatenate([start[pre], np.minimum(end[post] + post_len, span)])
  ctx_label = np.concatenate([label[pre], label[post]])
  ctx_phase = np.concatenate([np.zeros(pre.size, np.int64), np.full(post.size, _NUM_PHASES - 1)])
  n_ctx = ctx_label.size
  phase = np.full(kind.size, -1, np.int64)
  start, end = np.concatenate([start, ctx_start]), np.concatenate([end, ctx_end])
  kind = np.concatenate([kind, np.full(n_ctx, _CONTEXT)])
  label = np.concatenate([label, ctx_label])
  phase = np.concatenate([phase, ctx_phase])
  class_mult = np.concatenate([class_mult, rng.uniform(*cfg.context_class_mult, size=n_ctx)])
  act_mult = np.concatenate([act_mult, rng.uniform(*cfg.context_actionness_mult, size=n_ctx)])

  # Co-occurring twins in multi-class videos (as CliffDiving instances are also Diving): same interval +-10%.
  if labels.size > 1:
    twin = np.flatnonzero((kind == _GT) & (rng.random(kind.size) < cfg.cooccur_prob))
    if twin.size:
      partner = np.array([rng.choice(np.setdiff1d(labels, [label[i]])) for i in twin], np.int64)
      jitter = 0.1 * (end[twin] - start[twin])
      t_start = np.clip(start[twin] + rng.uniform(-1, 1, twin.size) * jitter, 0.0, span - cfg.min_length_s)
      t_end = np.clip(end[twin] + rng.uniform(-1, 1, twin.size) * jitter, 0.0, span)
      t_end = np.maximum(t_end, np.minimum(t_start + cfg.min_length_s, span))
      start, end = np.concatenate([start, t_start]), np.concatenate([end, t_end])
      kind = np.concatenate([kind, np.full(twin.size, _GT)])
      label = np.concatenate([label, partner])
      phase = np.concatenate([phase, np.full(twin.size, -1)])
      class_mult = np.concatenate([class_mult, np.exp(cfg.instance_strength_log_std * rng.standard_normal(twin.size))])
      act_mult = np.concatenate([act_mult, np.ones(twin.size)])
  return _Events(start=start, end=end, kind=kind, label=label, class_mult=class_mult, act_mult=act_mult,
                 phase=phase)


def _envelopes(cfg: SyntheticConfig, events: _Events, num_segments: int):
  """Per-(segment, event) overlap, class envelope with phase weights, and actionness envelope.

  Returns:
    cls_w: [T, E, K] weight of phase k of event e's prototype in segment t (overlap * class envelope * hat_k).
    act_w: [T, E] overlap * actionness envelope.
  """
  rate = cfg.feature_rate
  seg_start = np.arange(num_segments)[:, None] / rate                    # [T, 1]
  seg_end = seg_start + 1.0 / rate
  # Fraction of each segment covered by each event: partially covered boundary segments get partial evidence.
  overlap = np.clip(np.minimum(seg_end, events.end) - np.maximum(seg_start, events.start), 0.0, None) * rate  # [T, E]
  length = np.maximum(events.end - events.start, 1e-6)
  centre = np.clip(seg_start + 0.5 / rate, events.start, events.end)
  u = (centre - events.start) / length                                    # [T, E] in [0, 1]
  edge = np.minimum(u, 1.0 - u)                                           # 0 at the ends, 0.5 in the middle
  ramp = np.clip(edge / cfg.class_ramp_fraction, 0.0, 1.0) ** cfg.class_ramp_power
  env_cls = cfg.class_edge_floor + (1.0 - cfg.class_edge_floor) * ramp
  env_act = cfg.actionness_edge_floor + (1.0 - cfg.actionness_edge_floor) * np.clip(
      edge / cfg.actionness_ramp_fraction, 0.0, 1.0)
  h_start = np.clip(1.0 - u / cfg.phase_width, 0.0, 1.0)
  h_end = np.clip(1.0 - (1.0 - u) / cfg.phase_width, 0.0, 1.0)
  hats = np.stack([h_start, 1.0 - h_start - h_end, h_end], axis=-1)     # [T, E, K]
  fixed = events.phase >= 0
  hats[:, fixed] = np.eye(_NUM_PHASES, dtype=hats.dtype)[events.phase[fixed]]   # context: one phase throughout
  cls_w = (overlap * env_cls * events.class_mult)[..., None] * hats
  act_w = overlap * env_act * events.act_mult
  return cls_w.astype(np.float32), act_w.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, num_segments: int, dim: int, sigma: float) -> np.ndarray:
  """[T, dim] Gaussian noise with unit variance per entry, smoothed in time by a Gaussian kernel (via FFT)."""
  white = rng.standard_normal((num_segments, dim), dtype=np.float32)
  if sigma <= 0:
    return white
  half = int(np.ceil(3 * sigma))
  taps = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
  taps /= np.linalg.norm(taps)             # unit L2 norm keeps the per-entry variance at 1
  # Linear (not circular) convolution needs n >= T + 2 * half; any longer n gives the same values (up to float
  # rounding), and a length with only the factors 2, 3, 5 is 2-3x faster for numpy's FFT than an arbitrary one.
  n = _fft_size(num_segments + 2 * half)
  spectrum = np.fft.rfft(white, n=n, axis=0) * np.fft.rfft(taps, n=n)[:, None]
  # Keep the centred part.
  return np.fft.irfft(spectrum, n=n, axis=0)[half:half + num_segments].astype(np.float32)


def _fft_size(n: int) -> int:
  """The smallest 2^a 3^b 5^c >= n (n >= 1)."""
  best = 1 << (n - 1).bit_length()
  p5 = 1
  while p5 < best:
    p35 = p5
    while p35 < best:
      m = p35
      while m < n:
        m *= 2
      best = min(best, m)
      p35 *= 3
    p5 *= 5
  return best


def _shot_ids(cfg: SyntheticConfig, num_segments: int, rng: np.random.Generator) -> np.ndarray:
  """[T] int shot index of each segment (exponential shot lengths)."""
  mean_len = cfg.shot_length_s * cfg.feature_rate
  cuts = np.cumsum(rng.exponential(mean_len, size=int(num_segments / mean_len * 3) + 2))
  return np.searchsorted(cuts, np.arange(num_segments), side="right")


def _stream_features(cfg: SyntheticConfig, scfg: StreamConfig, sworld: _StreamWorld, labels: np.ndarray,
                     events: _Events, cls_w: np.ndarray, act_w: np.ndarray, shots: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
  """[T, D] float32 non-negative features of one stream of one video."""
  num_segments, r = shots.size, cfg.latent_dim
  gauss = lambda *shape: rng.standard_normal(shape, dtype=np.float32)
  # Per-event prototypes [E, K, r]: the video's style of its class (shared by its instances) + instance jitter.
  style = np.zeros((cfg.num_classes, r), np.float32)
  style[labels] = cfg.video_style * _unit(gauss(labels.size, r))
  is_other = events.kind == _OTHER
  target = np.where(is_other, 0, events.label)            # other actions index X, not the classes
  protos = sworld.phases[target] + style[target][:, None, :]                                      # [E, K, r]
  protos[is_other] = sworld.other_actions[events.label[is_other]][:, None, :]
  protos += cfg.instance_jitter * _unit(gauss(events.kind.size, 1, r))
  # sum_e sum_k cls_w[t, e, k] protos[e, k]: one [T, E*K] x [E*K, r] matrix product.
  latent = scfg.class_strength * (cls_w.reshape(num_segments, -1) @ protos.reshape(-1, r))       # [T, r]
  latent += scfg.actionness_strength * act_w.sum(axis=1)[:, None] * sworld.actionness[None, :]

  # Scene per shot: the class-typical scene mixed with a generic one; cutaway shots show a generic scene only.
  num_shots = int(shots.max()) + 1
  beta = rng.beta(*cfg.scene_class_mix)
  generic = sworld.generic_scenes[rng.integers(cfg.num_generic_scenes)]
  base = beta * sworld.class_scenes[labels[0]] + (1 - beta) * generic                           # [r]
  shot_scenes = _unit(base[None, :] + cfg.shot_jitter * _unit(gauss(num_shots, r)))             # [shots, r]
  cutaway = rng.random(num_shots) < cfg.cutaway_prob
  shot_scenes[cutaway] = sworld.generic_scenes[rng.integers(cfg.num_generic_scenes, size=int(cutaway.sum()))]
  latent += scfg.scene_strength * shot_scenes[shots]
  latent += scfg.video_offset_strength * _unit(gauss(r))[None, :]
  latent += _smooth_noise(rng, num_segments, r, cfg.noise_smooth_segments)

  x = latent @ sworld.projection                                                               # [T, D]
  x += sworld.mean
  # Full-rank noise, correlated between neighbouring segments (I3D windows overlap in content).
  eps = gauss(num_segments + 1, cfg.feature_dim)
  eps[1:] += eps[:-1]
  x += (scfg.iso_noise / np.sqrt(2.0)) * eps[1:]
  np.maximum(x, 0.0, out=x)
  x *= np.float32(np.exp(cfg.gain_log_std * rng.standard_normal()))
  return x


# ------------------------------------------------------------------------------- v3: sparse non-negative parts


@dataclasses.dataclass
class _PartsWorld:
  """One stream's dictionary of non-negative sparse channel patterns (feature_model = 'sparse_parts')."""
  base: np.ndarray           # [D] the always-on response of every channel (the shared component)
  actionness: np.ndarray     # [D] generic motion / person-in-action pattern, shared by all classes
  phases: np.ndarray         # [C, K, D] start / middle / end unit of each class
  class_scenes: np.ndarray   # [C, D]
  generic_scenes: np.ndarray # [S, D]
  other_actions: np.ndarray  # [X, D]
  nuisance: np.ndarray       # [N, D] camera motion, zoom, crowd, graphics: background variability


def _sparse_patterns(rng: np.random.Generator, n: int, dim: int, density: float, shape: float) -> np.ndarray:
  """[n, dim] non-negative patterns: each channel active with probability `density`, active magnitudes
  Gamma(shape) scaled so that a pattern's mean over its active channels is 1 (a pattern of strength s adds about
  s to each of its ~density * dim channels)."""
  active = rng.random((n, dim)) < density
  active[np.arange(n), rng.integers(0, dim, size=n)] = True          # never empty
  mag = rng.gamma(shape, 1.0 / shape, size=(n, dim)) * active
  return (mag / (mag.sum(-1, keepdims=True) / active.sum(-1, keepdims=True))).astype(np.float32)


def _mix(weights: Sequence[float], patterns: Sequence[np.ndarray]) -> np.ndarray:
  """Convex combination of non-negative patterns (stays non-negative)."""
  return sum(np.float32(w) * p for w, p in zip(weights, patterns)).astype(np.float32)


def _make_parts_world(cfg: SyntheticConfig, scfg: StreamConfig, rng: np.random.Generator,
                      action_family: np.ndarray, scene_family: np.ndarray) -> _PartsWorld:
  d, c = cfg.feature_dim, cfg.num_classes
  pat = lambda n: _sparse_patterns(rng, n, d, cfg.pattern_density, cfg.pattern_shape)
  base = rng.gamma(scfg.base_shape, scfg.base_mean / scfg.base_shape, size=d).astype(np.float32)
  n_fam = int(action_family.max()) + 1
  fam_core, own = pat(n_fam), pat(c)
  core = _mix([cfg.family_share, 1 - cfg.family_share], [fam_core[action_family], own])           # [C, D]
  fam_ends = pat(2 * n_fam).reshape(n_fam, 2, d)                                                 # start / end units
  ends = (cfg.phase_class_share * core[:, None, :]
          + (1 - cfg.phase_class_share) * fam_ends[action_family]).astype(np.float32)            # [C, 2, D]
  phases = np.stack([ends[:, 0], core, ends[:, 1]], axis=1)
  scene_fam = pat(int(scene_family.max()) + 1)
  class_scenes = _mix([cfg.scene_family_share, 1 - cfg.scene_family_share], [scene_fam[scene_family], pat(c)])
  return _PartsWorld(base=base, actionness=pat(1)[0], phases=phases, class_scenes=class_scenes,
                     generic_scenes=pat(cfg.num_generic_scenes), other_actions=pat(cfg.num_other_actions),
                     nuisance=pat(cfg.num_nuisance_patterns))


def _lognormal(rng: np.random.Generator, shape, std: float) -> np.ndarray:
  """Mean-one log-normal multipliers."""
  return np.exp(std * rng.standard_normal(shape, dtype=np.float32) - 0.5 * std ** 2).astype(np.float32)


def _parts_features(cfg: SyntheticConfig, scfg: StreamConfig, world: _PartsWorld, labels: np.ndarray,
                    events: _Events, cls_w: np.ndarray, act_w: np.ndarray, shots: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
  """[T, D] float32 non-negative features of one stream of one video (feature_model = 'sparse_parts').

    x_t = g_v * (b * o_v + signal_t) * n_t,   signal_t = act * sum_e act_w A + cls * sum_{e,k} cls_w P_{e,k}
                                                         + scene * S_shot(t) + nuis * sum_j w_j(t) N_j
  b: the shared always-on response, o_v: per-video per-channel gain (camera, lighting), P: the event's class
  units with the video's style and the instance's jitter (per-channel log-normal, so still non-negative), S: the
  shot's scene (class-typical or generic, present in background too), w_j: smooth non-negative nuisance
  weights, n_t: mean-one log-normal per-entry noise, smoothed over neighbouring segments (I3D windows overlap).
  """
  num_segments, d = shots.size, cfg.feature_dim
  style = np.ones((cfg.num_classes, d), np.float32)
  style[labels] = _lognormal(rng, (labels.size, d), cfg.video_style)
  is_other = events.kind == _OTHER
  target = np.where(is_other, 0, events.label)
  protos = world.phases[target] * style[target][:, None, :]                                    # [E, K, D]
  protos[is_other] = world.other_actions[events.label[is_other]][:, None, :]
  if cfg.context_core_share:   # context events show their phase's unit mixed with the class's core unit
    ctx = events.kind == _CONTEXT
    protos[ctx] = ((1 - cfg.context_core_share) * protos[ctx]
                   + cfg.context_core_share * protos[ctx][:, 1:2, :]).astype(np.float32)
  protos *= _lognormal(rng, (events.kind.size, 1, d), cfg.instance_jitter)
  if scfg.context_class_scale != 1.0:   # no random draw: the rest of the video is unchanged
    protos[events.kind == _CONTEXT] *= np.float32(scfg.context_class_scale)
  action = scfg.class_strength * (cls_w.reshape(num_segments, -1) @ protos.reshape(-1, d))     # [T, D]
  action += scfg.actionness_strength * act_w.sum(axis=1)[:, None] * world.actionness[None, :]
  signal = np.zeros_like(action)

  num_shots = int(shots.max()) + 1
  beta = rng.beta(*cfg.scene_class_mix)
  generic = world.generic_scenes[rng.integers(cfg.num_generic_scenes)]
  base_scene = beta * world.class_scenes[labels[0]] + (1 - beta) * generic                    # [D]
  shot_scenes = base_scene[None, :] * _lognormal(rng, (num_shots, d), cfg.shot_jitter)        # [shots, D]
  cutaway = rng.random(num_shots) < cfg.cutaway_prob
  shot_scenes[cutaway] = world.generic_scenes[rng.integers(cfg.num_generic_scenes, size=int(cutaway.sum()))]
  signal += scfg.scene_strength * shot_scenes[shots]
  if cfg.num_nuisance_patterns:
    w = np.maximum(_smooth_noise(rng, num_segments, cfg.num_nuisance_patterns, cfg.nuisance_smooth_segments), 0)
    signal += scfg.nuisance_strength * (w @ world.nuisance)

  x = world.base[None, :] * _lognormal(rng, (1, d), scfg.video_offset_strength) + signal
  # An action in the foreground hides part of the scene: the context responses drop where the action's are.
  occlusion = cfg.foreground_occlusion if scfg.foreground_occlusion is None else scfg.foreground_occlusion
  x *= 1.0 - occlusion * np.minimum(act_w.sum(axis=1), 1.0)[:, None]
  x += action
  # Per-entry multiplicative noise with coefficient of variation ~iso_noise, correlated between neighbours.
  noise = _smooth_noise(rng, num_segments, d, cfg.noise_smooth_segments)
  x *= np.exp(scfg.iso_noise * noise - 0.5 * scfg.iso_noise ** 2)
  x *= np.float32(cfg.feature_scale * np.exp(cfg.gain_log_std * rng.standard_normal()))
  return x.astype(np.float32)


_FEATURE_MODELS = {"dense_latent": (_make_stream_world, _stream_features),
                   "sparse_parts": (_make_parts_world, _parts_features)}


def _video_layout(world: _World, primary: int, multi: bool, rng: np.random.Generator):
  """(duration s, num_segments, labels, events) of one video: the first draws of its random stream."""
  cfg = world.config
  duration = float(np.clip(np.exp(cfg.duration_log_mean + cfg.duration_log_std * rng.standard_normal()),
                           cfg.min_duration_s, cfg.max_duration_s))
  num_segments = max(1, int(duration * cfg.feature_rate))
  span = num_segments / cfg.feature_rate   # events stay where there are features; duration - span < 1 segment
  labels = _video_labels(cfg, world, primary, multi, rng)
  return duration, num_segments, labels, _make_events(cfg, world, labels, span, rng)


def _make_video(world: _World, video_id: str, primary: int, multi: bool, rng: np.random.Generator) -> schema.Video:
  cfg = world.config
  duration, num_segments, labels, events = _video_layout(world, primary, multi, rng)
  cls_w, act_w = _envelopes(cfg, events, num_segments)
  # Smooth random intensity changes inside events (pauses, occlusions, camera cuts) fragment long actions.
  modulation = np.maximum(1.0 + cfg.intensity_modulation * _smooth_noise(rng, num_segments, 1, 2.0), 0.1)  # [T, 1]
  cls_w *= modulation[:, :, None]
  act_w *= modulation
  shots = _shot_ids(cfg, num_segments, rng)
  stream_features = _FEATURE_MODELS[cfg.feature_model][1]
  feats = {s: stream_features(cfg, getattr(cfg, s), world.streams[s], labels, events, cls_w, act_w, shots, rng)
           for s in schema.STREAMS}
  gt = np.flatnonzero(events.kind == _GT)
  gt = gt[np.argsort(events.start[gt], kind="stable")]
  return schema.Video(
      video_id=video_id, labels=np.sort(labels), duration=duration, rgb=feats["rgb"], flow=feats["flow"],
      segments=np.stack([events.start[gt], events.end[gt]], axis=1).astype(np.float32),
      segment_labels=events.label[gt].astype(np.int64))


def _split_plan(cfg: SyntheticConfig, split: str, seed: int):
  """(video ids, primary classes, multi-class flags) of a split: classes balanced, ids distinct and sorted."""
  n = cfg.split_sizes()[split]
  rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODE[split], 0]))
  primaries = rng.permutation(np.resize(np.arange(cfg.num_classes), n))
  # An exact number of multi-class videos, so small splits keep the intended share.
  multi = rng.permutation(n) < int(round(cfg.multi_label_prob * n))
  numbers = np.sort(rng.choice(np.arange(1, max(2000, 4 * n)), size=n, replace=False))
  ids = [f"{_VIDEO_ID_PREFIX[split]}{k:07d}" for k in numbers]
  return ids, primaries, multi


def generate_videos(preset: Union[str, SyntheticConfig], split: str, seed: int = 0,
                    world: Optional[_World] = None) -> Iterator[schema.Video]:
  """Yields the videos of one split, one at a time (never the whole split in memory).

  Args:
    preset: a preset name ("tiny", "thumos14") or a SyntheticConfig.
    split: "train" or "test".
    seed: the dataset seed; the same seed gives identical videos.
    world: the shared random world for this (config, seed), to avoid rebuilding it per split.

  Yields:
    schema.Video objects in video-id order.
  """
  cfg = get_config(preset)
  if split not in cfg.split_sizes():
    raise ValueError(f"unknown split {split!r}; this preset has {sorted(cfg.split_sizes())}")
  world = world or _make_world(cfg, seed)
  ids, primaries, multi = _split_plan(cfg, split, seed)
  for i, (video_id, primary) in enumerate(zip(ids, primaries)):
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODE[split], i + 1]))
    yield _make_video(world, video_id, int(primary), bool(multi[i]), rng)


# Names of the event kinds (index = kind code) and of segments that no event covers, for diagnostics.
EVENT_KINDS = ("instance", "unlabeled_instance", "distractor", "other_action", "context")
BACKGROUND = "background"


def segment_event_kinds(cfg: SyntheticConfig, events: _Events, num_segments: int) -> np.ndarray:
  """[T] int: per segment the kind code (index into EVENT_KINDS) of the events covering at least half of it, the
  lowest code (instance first) where several do; -1 (background) where none does."""
  rate = cfg.feature_rate
  seg_start = np.arange(num_segments)[:, None] / rate                    # [T, 1]
  overlap = np.clip(np.minimum(seg_start + 1.0 / rate, events.end) - np.maximum(seg_start, events.start),
                    0.0, None) * rate                                     # [T, E] share of the segment
  kinds = np.full(num_segments, -1, np.int64)
  if events.kind.size:
    codes = np.where(overlap >= 0.5, events.kind[None, :], len(EVENT_KINDS))   # [T, E]
    lowest = codes.min(axis=1)
    covered = lowest < len(EVENT_KINDS)
    kinds[covered] = lowest[covered]
  return kinds


def video_event_kinds(preset: Union[str, SyntheticConfig], split: str, seed: int = 0
                      ) -> Iterator[Tuple[str, np.ndarray]]:
  """Yields (video_id, per-segment event kinds [T], see `segment_event_kinds`) for the videos of a split, exactly
  as `generate_videos` lays them out (same random streams), without computing their features."""
  cfg = get_config(preset)
  if split not in cfg.split_sizes():
    raise ValueError(f"unknown split {split!r}; this preset has {sorted(cfg.split_sizes())}")
  world = _make_world(cfg, seed)
  ids, primaries, multi = _split_plan(cfg, split, seed)
  for i, (video_id, primary) in enumerate(zip(ids, primaries)):
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODE[split], i + 1]))
    _, num_segments, _, events = _video_layout(world, int(primary), bool(multi[i]), rng)
    yield video_id, segment_event_kinds(cfg, events, num_segments)


def config_from_manifest(manifest: schema.Manifest) -> Tuple[SyntheticConfig, int]:
  """(generator config, dataset seed) of a dataset this module wrote, from its manifest's provenance.

  Raises:
    ValueError: the dataset was not written by this generator, or by another GENERATOR_VERSION (its videos could
      not be laid out again).
  """
  extra = manifest.extra or {}
  if extra.get("generator") != __name__ or "config" not in extra:
    raise ValueError("the dataset was not written by the built-in synthetic generator (its manifest has no "
                     "generator config)")
  if extra.get("generator_version") != GENERATOR_VERSION:
    raise ValueError(f"the dataset was written by generator version {extra.get('generator_version')}, this is "
                     f"version {GENERATOR_VERSION}: its layout cannot be reproduced")
  fields = {f.name: f for f in dataclasses.fields(SyntheticConfig)}
  values = {}
  for name, value in extra["config"].items():
    if name not in fields:
      raise ValueError(f"the manifest's generator config has an unknown field {name!r}")
    if name in ("rgb", "flow"):
      value = StreamConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
    elif isinstance(value, list):
      value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    values[name] = value
  return SyntheticConfig(**values), int(extra["seed"])


# ---------------------------------------------------------------------------------------------- statistics


class _Stats:
  """Running dataset statistics of one split, filled while videos stream to disk."""

  def __init__(self):
    self.num_videos = 0
    self.num_segments = 0
    self.num_instances = 0
    self.multi_label = 0
    self.durations = []
    self.coverages = []
    self.lengths = []

  def add(self, video: schema.Video) -> None:
    self.num_videos += 1
    self.num_segments += video.num_segments
    self.num_instances += int(video.segment_labels.size)
    self.multi_label += int(np.unique(video.labels).size > 1)
    self.durations.append(video.duration)
    self.lengths.append(video.segments[:, 1] - video.segments[:, 0])
    self.coverages.append(coverage(video.segments, video.duration))

  def result(self) -> Dict[str, float]:
    lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0)
    n = max(self.num_videos, 1)
    return {
        "num_videos": self.num_videos, "num_segments": self.num_segments, "num_instances": self.num_instances,
        "instances_per_video": self.num_instances / n,
        "mean_duration_s": float(np.mean(self.durations)) if self.durations else 0.0,
        "min_duration_s": float(np.min(self.durations)) if self.durations else 0.0,
        "max_duration_s": float(np.max(self.durations)) if self.durations else 0.0,
        "mean_coverage": float(np.mean(self.coverages)) if self.coverages else 0.0,
        "median_instance_length_s": float(np.median(lengths)) if lengths.size else 0.0,
        "multi_label_share": self.multi_label / n,
    }


def coverage(segments: np.ndarray, duration: float, resolution: float = 0.1) -> float:
  """Share of [0, duration] covered by the union of the [N, 2] segments (seconds), on a `resolution` s grid."""
  bins = max(int(np.ceil(duration / resolution)), 1)
  if segments.size == 0:
    return 0.0
  lo = np.clip(np.floor(segments[:, 0] / resolution).astype(int), 0, bins)
  hi = np.clip(np.ceil(segments[:, 1] / resolution).astype(int), 0, bins)
  # +1 at each start and -1 at each end; the running sum is the number of segments covering a bin.
  delta = np.zeros(bins + 1, np.int64)
  np.add.at(delta, lo, 1)
  np.add.at(delta, hi, -1)
  return float(np.mean(np.cumsum(delta)[:bins] > 0))


# ---------------------------------------------------------------------------------------------- writing


def generate(output_dir: str, preset: Union[str, SyntheticConfig] = "thumos14", seed: int = 0,
             overwrite: bool = False) -> schema.Manifest:
  """Writes a synthetic dataset directory (shards + manifest, see schema.py), video by video.

  Args:
    output_dir: the dataset directory to create.
    preset: "tiny", "thumos14" or a SyntheticConfig.
    seed: dataset seed.
    overwrite: replace an existing complete dataset in output_dir.

  Returns:
    The manifest; `manifest.extra` records the generator, preset, seed, config and per-split statistics.

  Raises:
    FileExistsError: output_dir already holds a dataset and overwrite is False.
  """
  cfg = get_config(preset)
  name = preset if isinstance(preset, str) else "custom"
  world = _make_world(cfg, seed)
  stats = {split: _Stats() for split in cfg.split_sizes()}
  extra = {"generator": __name__, "generator_version": GENERATOR_VERSION, "preset": name, "seed": int(seed),
           "config": dataclasses.asdict(cfg)}
  dims = {s: cfg.feature_dim for s in schema.STREAMS}
  with schema.DatasetWriter(output_dir, cfg.class_names, cfg.feature_rate, feature_dims=dims,
                            videos_per_shard=cfg.videos_per_shard, overwrite=overwrite, extra=extra) as writer:
    for split in cfg.split_sizes():
      for video in generate_videos(cfg, split, seed, world=world):
        stats[split].add(video)
        writer.write(split, video, source=f"synthetic {name} seed {seed}")
  # The statistics are known only once every video is written: add them to the (already complete) manifest,
  # which write_manifest replaces atomically.
  manifest = schema.read_manifest(output_dir)
  manifest.extra["stats"] = {split: s.result() for split, s in stats.items()}
  schema.write_manifest(output_dir, manifest)
  return manifest


def dataset_name(preset: str, seed: int) -> str:
  """The cache subdirectory of a (preset, seed) for this generator version."""
  return f"{preset}-seed{seed}-v{GENERATOR_VERSION}"


@contextlib.contextmanager
def _lock(path: str):
  """An exclusive advisory file lock, so concurrent processes do not generate the same directory twice."""
  try:
    import fcntl  # pylint: disable=g-import-not-at-top
  except ImportError:  # not POSIX: no locking
    yield
    return
  with open(path, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def ensure_dataset(cache_dir: str, preset: str = "thumos14", seed: int = 0) -> str:
  """Returns the directory of a synthetic dataset, generating it on first use.

  The dataset lives in `cache_dir/<preset>-seed<seed>-v<GENERATOR_VERSION>`. A directory with a readable manifest is
  complete and reused; one without (an interrupted generation) is regenerated. Concurrent callers serialize on a
  lock file next to the directory, so only the first one generates.

  Args:
    cache_dir: a local directory for cached datasets (created if missing).
    preset: "tiny" or "thumos14".
    seed: dataset seed.

  Returns:
    The dataset directory, ready for schema.read_manifest / the input pipelines.
  """
  get_config(preset)   # fail fast on an unknown preset
  data_dir = os.path.join(cache_dir, dataset_name(preset, seed))
  os.makedirs(cache_dir, exist_ok=True)
  with _lock(data_dir + ".lock"):
    if os.path.exists(os.path.join(data_dir, schema.MANIFEST_NAME)):
      try:
        schema.read_manifest(data_dir)
        logging.info("Using the cached synthetic dataset %s", data_dir)
        return data_dir
      except schema.DataFormatError as e:
        logging.warning("Cached synthetic dataset %s is unreadable (%s); regenerating it", data_dir, e)
    elif os.path.isdir(data_dir):
      logging.warning("%s has no manifest (an interrupted generation); regenerating it", data_dir)
    logging.info("Generating the synthetic %r dataset (seed %d) into %s ...", preset, seed, data_dir)
    start = time.time()
    manifest = generate(data_dir, preset, seed, overwrite=True)
    sizes = {split: info["num_videos"] for split, info in manifest.splits.items()}
    logging.info("Generated %s in %.1f s: %s videos", data_dir, time.time() - start, sizes)
  return data_dir
