"""Attention health: is a network's class-agnostic attention still informative, or has it collapsed? (NumPy only.)

Every model here weighs segments by a class-agnostic attention in [0, 1] (STPN section 3.1, Nguyen'19 Sec. 3.1,
AUMN Eq. 7, HAM-Net Eq. 4). On features whose statistics do not suit the printed method the attention can collapse:
it goes to ~0 (or ~1) on every segment, or moves as one number per video, and the localization mAP is ~0 while the
classification loss still falls (BUILD_NOTES.md, "When the attention collapses"). Three numbers per network say
whether that happened:

  mean          the mean attention over the real (unpadded) segments of all videos (segments pooled);
  share_below   the share of those segments with attention < low (0.05);
  share_above   the share with attention > high (0.95);
  median AUC    the median over videos of the per-video attention AUC against the ground truth: segment t is
                positive when it overlaps a ground-truth instance of any class. The AUC is the Mann-Whitney
                statistic from ranks, ties averaged (a constant attention scores 0.5). Videos whose segments are all
                positive or all negative have no AUC: they are skipped and counted.

Two more AUCs say *which part* of the actions an attention misses (the papers' "temporal extent" and "completeness"
arguments: an attention that finds only the most discriminative moments of an action, Nguyen'19 Sec. 1, HAM-Net
Sec. 1):

  median core AUC   the same per-video AUC with only the instances' middle halves as positives (segments whose
                centre lies at least a quarter of the instance's length from both of its ends), against the same
                negatives (segments outside every instance);
  median ends AUC   with only the other positive segments (the outer quarters at each end) as positives.
                A core AUC well above the ends AUC: the attention ranks the middles above background and the
                beginnings and ends with it (BUILD_NOTES.md, "Session 9").

A further number says *why* an attention may be uninformative:

  median mass correlation   the median over videos of the within-video Spearman rank correlation between the
                attention and each segment's L1 feature mass (the sum of its non-negative features; for a network
                reading several streams, the sum over them). Under Adam every first-layer weight of an attention
                unit moves by about the learning rate per step, and on non-negative features a unit's weights
                tend to move together, so an attention that drifts instead of learning follows the mass: near +1
                or -1 it ranks segments by how much activation they carry, not by what they show (BUILD_NOTES.md,
                "When the attention collapses"). Compare it with the AUC: an attention that learned the actions
                can correlate with the mass only as much as actions and background differ in mass.

`CollapseGuard` watches the training reports of these statistics (and the final evaluation) and raises a warning
when a network's attention stays collapsed: below `low` or above `high` on more than `max_share` of its segments
for `patience` consecutive reports. It is plain Python; the training loop binds it to gin as `collapse_guard`.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

LOW = 0.05
HIGH = 0.95
NOTES_SECTION = "BUILD_NOTES.md, section \"When the attention collapses\""

# What is known so far about why the attention collapses and what can be done (details and measurements in the
# BUILD_NOTES.md section named above). Options marked "ours" are not in any paper.
KNOWN_CAUSES = (
    "non-negative features with a large shared component and 1/T attention pooling (STPN Eq. 1, Nguyen'19 Eqs. 1 "
    "and 4): the loss falls by moving the whole video's attention level as one number (Nguyen'19: L_fg and L_bg "
    "pull it to 0 or 1), and Adam moves every first-layer weight of an attention unit the same way",
    "a sparsity weight that is too strong (attention -> 0) or too weak (-> 1) for the learning rate",
    "a learning rate at which the attention's level drifts faster than the classifier learns per-segment "
    "evidence (measured for HAM-Net as printed on built-in data: lr 3e-4, the old budget file's, collapses to 0; "
    "the paper's 1e-5 learns on the same data)",
    "an attention that no loss compares with background (AUMN Eq. 7): measured on built-in data, it first ranks "
    "the actions, then drifts towards the segments' feature mass once the video classification is solved (read "
    "median_mass_correlation next to the AUC)",
)
OPTIONS = (
    "lower make_optimizer.learning_rate",
    "change the sparsity weight (STPN.sparsity_weight, AUMN.sparsity_weights, HAMNet.sparsity_weight)",
    "centre the input features (HAMNet.center_features = True; ours, not the paper)",
    "weighted-mean pooling (STPN/BGM .pooling_normalization = 'attention'; ours, not the paper)",
    "compare the features with real ones: python tools/dataset_profile.py --data_dir=DIR",
)


# ------------------------------------------------------------------------------------------------- statistics


def segment_positives(num_segments: int, gt_segments: np.ndarray, feature_rate: float) -> np.ndarray:
  """Which segments overlap a ground-truth instance of any class.

  Segment t covers [t / rate, (t + 1) / rate) seconds (BUILD_NOTES.md, STPN "Time"); it is positive when that
  interval overlaps some instance [start, end] by a positive length (touching at an end point does not count).

  Args:
    num_segments: T, the video's real segments.
    gt_segments: [S, 2] instance (start, end) in seconds, any class; S may be 0.
    feature_rate: segments per second.

  Returns:
    bool [T].
  """
  if feature_rate <= 0:
    raise ValueError(f"feature_rate must be > 0, got {feature_rate}")
  gt = np.asarray(gt_segments, np.float64).reshape(-1, 2)
  t = np.arange(int(num_segments), dtype=np.float64)
  starts, ends = t / feature_rate, (t + 1) / feature_rate
  if gt.shape[0] == 0:
    return np.zeros(int(num_segments), bool)
  overlap = (starts[:, None] < gt[None, :, 1]) & (ends[:, None] > gt[None, :, 0])   # [T, S]
  return overlap.any(axis=1)


def segment_instance_depth(num_segments: int, gt_segments: np.ndarray, feature_rate: float) -> np.ndarray:
  """How deep inside a ground-truth instance each segment's centre lies: 0 at an end, 1 in the middle.

  Segment t's centre is (t + 0.5) / rate seconds. Its depth in an instance [start, end] containing the centre is
  min(centre - start, end - centre) / ((end - start) / 2); the maximum over instances; 0 where no instance contains
  the centre (also for a segment that overlaps an instance only with its edge: `segment_positives` still counts it
  as positive, and its depth 0 puts it with the instance's ends).

  Args:
    num_segments: T, the video's real segments.
    gt_segments: [S, 2] instance (start, end) in seconds, any class; S may be 0.
    feature_rate: segments per second.

  Returns:
    float [T] in [0, 1].
  """
  if feature_rate <= 0:
    raise ValueError(f"feature_rate must be > 0, got {feature_rate}")
  gt = np.asarray(gt_segments, np.float64).reshape(-1, 2)
  centre = (np.arange(int(num_segments), dtype=np.float64) + 0.5) / feature_rate          # [T]
  if gt.shape[0] == 0:
    return np.zeros(int(num_segments))
  half = np.maximum((gt[:, 1] - gt[:, 0]) / 2.0, 1e-12)                                  # [S]
  depth = np.minimum(centre[:, None] - gt[None, :, 0], gt[None, :, 1] - centre[:, None]) / half[None, :]   # [T, S]
  return np.clip(depth, 0.0, 1.0).max(axis=1)


# A positive segment belongs to its instance's core (the middle half) at this depth or deeper, else to its ends.
CORE_DEPTH = 0.5


def average_ranks(values: np.ndarray) -> np.ndarray:
  """1-based ranks of values [N] in ascending order, tied values getting the mean of their ranks."""
  values = np.asarray(values, np.float64).reshape(-1)
  order = np.argsort(values, kind="mergesort")
  sorted_values = values[order]
  # Start index of each run of equal values in the sorted order.
  starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
  ends = np.r_[starts[1:], values.size]                                   # exclusive
  run_rank = (starts + 1 + ends) / 2.0                                    # mean of ranks starts+1 .. ends
  ranks = np.empty(values.size, np.float64)
  ranks[order] = np.repeat(run_rank, ends - starts)
  return ranks


def rank_auc(scores: np.ndarray, positives: np.ndarray) -> Optional[float]:
  """Area under the ROC curve of scores [N] against bool positives [N], from ranks (Mann-Whitney U / (P N)).

  Ties count one half. Returns None when there is no positive or no negative (the AUC is undefined).
  """
  scores = np.asarray(scores, np.float64).reshape(-1)
  positives = np.asarray(positives, bool).reshape(-1)
  if scores.shape != positives.shape:
    raise ValueError(f"scores {scores.shape} and positives {positives.shape} differ in shape")
  if np.isnan(scores).any():
    raise ValueError("attention contains NaN")
  num_pos = int(positives.sum())
  num_neg = positives.size - num_pos
  if num_pos == 0 or num_neg == 0:
    return None
  ranks = average_ranks(scores)
  u = ranks[positives].sum() - num_pos * (num_pos + 1) / 2.0
  return float(u / (num_pos * num_neg))


def rank_correlation(x: np.ndarray, y: np.ndarray) -> Optional[float]:
  """Spearman's rank correlation of x [N] and y [N]: the Pearson correlation of their average ranks (ties
  averaged). Returns None when N < 3 or either is constant (undefined)."""
  x = np.asarray(x, np.float64).reshape(-1)
  y = np.asarray(y, np.float64).reshape(-1)
  if x.shape != y.shape:
    raise ValueError(f"x {x.shape} and y {y.shape} differ in shape")
  if x.size < 3 or np.isnan(x).any() or np.isnan(y).any():
    return None
  rx, ry = average_ranks(x), average_ranks(y)
  rx, ry = rx - rx.mean(), ry - ry.mean()
  denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
  if denominator == 0:
    return None
  return float((rx * ry).sum() / denominator)


def network_mass(network: str, masses: Mapping[str, np.ndarray]) -> Optional[np.ndarray]:
  """The L1 feature mass [T] a network reads: its stream's when the network is named after one (per-stream
  models: "rgb", "flow"), else the sum over the streams given (a joint network such as HAM-Net's). None without
  masses."""
  if not masses:
    return None
  if network in masses:
    return np.asarray(masses[network], np.float64).reshape(-1)
  return np.sum([np.asarray(m, np.float64).reshape(-1) for m in masses.values()], axis=0)


def segment_statistics(attention: np.ndarray, low: float = LOW, high: float = HIGH) -> Dict[str, float]:
  """Mean, share below `low` and share above `high` of attention values [N] (real segments only)."""
  attention = np.asarray(attention, np.float64).reshape(-1)
  if attention.size == 0:
    raise ValueError("no segments")
  return {"mean": float(attention.mean()), "share_below": float(np.mean(attention < low)),
          "share_above": float(np.mean(attention > high)), "num_segments": int(attention.size)}


def statistics_from_sums(total: float, below: float, above: float, count: float) -> Dict[str, float]:
  """The `segment_statistics` of a batch from its sums over real segments (sum of attention, number below `low`,
  number above `high`, number of real segments), as the training step computes them."""
  count = max(float(count), 1.0)
  return {"mean": float(total) / count, "share_below": float(below) / count, "share_above": float(above) / count}


class AttentionHealth:
  """Accumulates the attention health of each network over videos: `reset()`, `update(...)`, `result()`.

  Args:
    networks: the network names whose attention is scored (e.g. ("rgb", "flow") or ("hamnet",)).
    low, high: the thresholds of share_below and share_above.
  """

  def __init__(self, networks: Sequence[str], low: float = LOW, high: float = HIGH):
    if not 0.0 <= low < high <= 1.0:
      raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    self.networks = tuple(networks)
    self.low, self.high = float(low), float(high)
    self.reset()

  def reset(self) -> None:
    self._sum = {n: 0.0 for n in self.networks}
    self._below = {n: 0 for n in self.networks}
    self._above = {n: 0 for n in self.networks}
    self._count = {n: 0 for n in self.networks}
    self._aucs = {n: [] for n in self.networks}
    self._skipped = {n: 0 for n in self.networks}
    self._mass_corrs = {n: [] for n in self.networks}
    self._core_aucs = {n: [] for n in self.networks}
    self._ends_aucs = {n: [] for n in self.networks}

  def update(self, network: str, attention: np.ndarray, positives: np.ndarray,
             mass: Optional[np.ndarray] = None, core: Optional[np.ndarray] = None) -> Optional[float]:
    """Adds one video: its attention [T], segment positives [T] and, optionally, the L1 feature mass [T] the
    network reads and which positives lie in an instance's core [T] bool (real segments only; see
    `segment_instance_depth`). Returns its AUC."""
    attention = np.asarray(attention, np.float64).reshape(-1)
    if network not in self._sum:
      raise KeyError(f"unknown network {network!r}; scored networks are {self.networks}")
    auc = rank_auc(attention, positives)
    if core is not None:
      positives = np.asarray(positives, bool).reshape(-1)
      core = np.asarray(core, bool).reshape(-1)
      if core.shape != positives.shape:
        raise ValueError(f"network {network!r}: core mask has {core.size} segments, positives {positives.size}")
      core = core & positives
      for part, aucs in ((core, self._core_aucs[network]), (positives & ~core, self._ends_aucs[network])):
        keep = part | ~positives                            # this part of the instances against the negatives
        part_auc = rank_auc(attention[keep], part[keep])
        if part_auc is not None:
          aucs.append(part_auc)
    if mass is not None:
      corr = rank_correlation(attention, mass)
      if corr is not None:
        self._mass_corrs[network].append(corr)
    self._sum[network] += float(attention.sum())
    self._below[network] += int(np.sum(attention < self.low))
    self._above[network] += int(np.sum(attention > self.high))
    self._count[network] += int(attention.size)
    if auc is None:
      self._skipped[network] += 1
    else:
      self._aucs[network].append(auc)
    return auc

  def update_video(self, info: Mapping, outputs_by_network: Mapping[str, Mapping[str, np.ndarray]],
                   feature_rate: float) -> None:
    """Adds one video as `inference.predict_videos` yields it (info with num_segments and segments [S, 2] s; each
    network's outputs with "attention" [T] over the real segments)."""
    positives = segment_positives(info["num_segments"], info["segments"], feature_rate)
    core = segment_instance_depth(info["num_segments"], info["segments"], feature_rate) >= CORE_DEPTH
    for network in self.networks:
      if "attention" not in outputs_by_network.get(network, {}):
        raise ValueError(f"video {info.get('video_id')}: network {network!r} has no 'attention' output")
      attention = np.asarray(outputs_by_network[network]["attention"]).reshape(-1)
      if attention.size != positives.size:
        raise ValueError(f"video {info.get('video_id')}: network {network!r} gives {attention.size} attention "
                         f"values for {positives.size} segments")
      mass = network_mass(network, info.get("segment_l1_mass") or {})
      if mass is not None and mass.size != attention.size:
        raise ValueError(f"video {info.get('video_id')}: {mass.size} feature masses for {attention.size} "
                         f"attention values")
      self.update(network, attention, positives, mass, core)

  def result(self) -> Dict:
    """{"low", "high", "networks": {network: {mean, share_below, share_above, num_segments, median_video_auc,
    num_videos_auc, num_videos_skipped, median_mass_correlation, num_videos_mass, median_video_auc_core,
    median_video_auc_ends}}}; median_video_auc is None when no video has an AUC, median_mass_correlation when no
    video came with feature masses, the core / ends AUCs when no video had that part and negatives."""
    networks = {}
    for n in self.networks:
      count = self._count[n]
      aucs = self._aucs[n]
      networks[n] = {
          "mean": self._sum[n] / count if count else None,
          "share_below": self._below[n] / count if count else None,
          "share_above": self._above[n] / count if count else None,
          "num_segments": count,
          "median_video_auc": float(np.median(aucs)) if aucs else None,
          "num_videos_auc": len(aucs),
          "num_videos_skipped": self._skipped[n],
          "median_mass_correlation": float(np.median(self._mass_corrs[n])) if self._mass_corrs[n] else None,
          "num_videos_mass": len(self._mass_corrs[n]),
          "median_video_auc_core": float(np.median(self._core_aucs[n])) if self._core_aucs[n] else None,
          "median_video_auc_ends": float(np.median(self._ends_aucs[n])) if self._ends_aucs[n] else None,
      }
    return {"low": self.low, "high": self.high, "networks": networks}


def attention_networks(task) -> tuple:
  """The networks of a task that have a learned attention: every network, except for a task built without
  attention (STPN.use_attention = False, whose "attention" is the padding mask)."""
  if getattr(task, "use_attention", True) is False:
    return ()
  return tuple(task.networks)


def format_result(result: Mapping) -> str:
  """A few lines for the evaluation summary."""
  low, high = result["low"], result["high"]
  lines = [f"attention health (share of segments < {low:g} / > {high:g}, median per-video AUC):"]
  for name, r in result["networks"].items():
    if not r["num_segments"]:
      lines.append(f"  {name}: no segments")
      continue
    auc = "n/a" if r["median_video_auc"] is None else f"{r['median_video_auc']:.3f}"
    lines.append(f"  {name}: mean {r['mean']:.3f}, < {low:g}: {100 * r['share_below']:.1f}%, > {high:g}: "
                 f"{100 * r['share_above']:.1f}%, median AUC {auc} over {r['num_videos_auc']} videos "
                 f"({r['num_videos_skipped']} without both positive and negative segments skipped)"
                 + ("" if r.get("median_video_auc_core") is None or r.get("median_video_auc_ends") is None else
                    f"; instance cores {r['median_video_auc_core']:.3f} / ends {r['median_video_auc_ends']:.3f}")
                 + ("" if r.get("median_mass_correlation") is None else
                    f"; rank correlation with the feature mass {r['median_mass_correlation']:+.2f}"))
  return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- the guard


@dataclasses.dataclass
class CollapseWarning:
  """One collapse episode of one network (JSON-ready with `dataclasses.asdict`).

  Attributes:
    network: the network's name.
    statistic: "share_below_<low>" or "share_above_<high>".
    value: the statistic at the latest report of the episode.
    mean: the mean attention at that report.
    first_step, last_step: the first and the latest report of the episode (training steps; the final
      evaluation's step for where = "final_evaluation").
    reports: consecutive reports above max_share so far.
    where: "training" or "final_evaluation".
    recovered_at_step: the first report back under max_share, or None while still collapsed.
    median_video_auc: at the final evaluation, the network's median per-video attention AUC (a saturated attention
      can still rank action above background; 0.5 or less means it does not).
    message: the warning as printed.
  """

  network: str
  statistic: str
  value: float
  mean: float
  first_step: int
  last_step: int
  reports: int
  where: str
  recovered_at_step: Optional[int] = None
  median_video_auc: Optional[float] = None
  message: str = ""


class CollapseGuard:
  """Warns when a network's attention stays collapsed.

  A report (one per progress line during training) gives each network's mean and share of segments below `low` /
  above `high`. When a share exceeds `max_share` on `patience` consecutive reports, a warning fires once for that
  episode; it is updated while the episode lasts and marked recovered when the share falls back. `final_check`
  applies the same rule to the final evaluation, where one report (the whole split) is enough.

  Args:
    patience: consecutive reports before a warning.
    low, high: attention thresholds.
    max_share: share of segments beyond a threshold above which a report counts as collapsed.
    enabled: False makes the guard silent (statistics are still logged).
  """

  def __init__(self, patience: int = 3, low: float = LOW, high: float = HIGH, max_share: float = 0.95,
               enabled: bool = True):
    if int(patience) < 1:
      raise ValueError(f"collapse_guard.patience must be >= 1, got {patience}")
    if not 0.0 <= low < high <= 1.0:
      raise ValueError(f"collapse_guard needs 0 <= low < high <= 1, got low={low}, high={high}")
    if not 0.0 <= max_share < 1.0:
      raise ValueError(f"collapse_guard.max_share must be in [0, 1), got {max_share}")
    self.patience = int(patience)
    self.low, self.high, self.max_share = float(low), float(high), float(max_share)
    self.enabled = bool(enabled)
    self.warnings: List[CollapseWarning] = []
    self.last_step = 0                      # of the latest report
    self._streaks: Dict[tuple, List] = {}   # (network, side) -> [first_step, reports, open warning or None]

  def _sides(self, stats: Mapping[str, float]):
    yield "below", f"share_below_{self.low:g}", stats["share_below"]
    yield "above", f"share_above_{self.high:g}", stats["share_above"]

  def update(self, step: int, statistics: Mapping[str, Mapping[str, float]]) -> List[CollapseWarning]:
    """Takes one report {network: {mean, share_below, share_above}}; returns the warnings that fire now."""
    fired = []
    self.last_step = int(step)
    if not self.enabled:
      return fired
    for network, stats in statistics.items():
      for side, name, value in self._sides(stats):
        key = (network, side)
        if value > self.max_share:
          streak = self._streaks.setdefault(key, [int(step), 0, None])
          streak[1] += 1
          warning = streak[2]
          if warning is None and streak[1] >= self.patience:
            warning = CollapseWarning(network, name, float(value), float(stats["mean"]), streak[0], int(step),
                                      streak[1], "training")
            streak[2] = warning
            self.warnings.append(warning)
            fired.append(warning)
          if warning is not None:
            warning.value, warning.mean, warning.last_step, warning.reports = (
                float(value), float(stats["mean"]), int(step), streak[1])
            warning.message = self._message(warning)
        elif key in self._streaks:
          warning = self._streaks.pop(key)[2]
          if warning is not None:
            warning.recovered_at_step = int(step)
            warning.message = self._message(warning)
    return fired

  def final_check(self, health_result: Mapping, step: Optional[int] = None) -> List[CollapseWarning]:
    """Checks an `AttentionHealth.result()` (e.g. of the test split): one collapsed report is enough there.
    step: the training step of the evaluated weights (default: that of the latest report)."""
    fired = []
    step = self.last_step if step is None else int(step)
    if not self.enabled:
      return fired
    for network, r in health_result["networks"].items():
      if not r["num_segments"]:
        continue
      for _, name, value in self._sides(r):
        if value > self.max_share:
          warning = CollapseWarning(network, name, float(value), float(r["mean"]), step, step,
                                    1, "final_evaluation", median_video_auc=r.get("median_video_auc"))
          warning.message = self._message(warning)
          self.warnings.append(warning)
          fired.append(warning)
    return fired

  def collapsed_networks(self) -> List[str]:
    """'network < low' / 'network > high' for each episode still open (for the progress line)."""
    out = []
    for (network, side), streak in sorted(self._streaks.items()):
      if streak[2] is not None:
        out.append(f"{network} {'<' if side == 'below' else '>'} {self.low if side == 'below' else self.high:g}")
    return out

  def _message(self, w: CollapseWarning) -> str:
    side = f"below {self.low:g}" if w.statistic.startswith("share_below") else f"above {self.high:g}"
    if w.where == "training":
      span = (f"for {w.reports} consecutive training reports (steps {w.first_step}-{w.last_step}" +
              (f"; back under {100 * self.max_share:g}% at step {w.recovered_at_step})" if w.recovered_at_step
               is not None else ")"))
    else:
      span = "at the final evaluation" + (f" (median per-video attention AUC {w.median_video_auc:.3f})"
                                          if w.median_video_auc is not None else "")
    return (f"ATTENTION COLLAPSE: network '{w.network}': {100 * w.value:.1f}% of its segments have attention {side} "
            f"(mean {w.mean:.4f}) {span}. See {NOTES_SECTION}.")

  @staticmethod
  def advice() -> str:
    """The known causes and options, printed once with the warnings."""
    return ("Known causes: " + "; ".join(KNOWN_CAUSES) + ".\nOptions: " + "; ".join(OPTIONS) + ".")

  def report(self) -> List[Dict]:
    """Every warning so far as JSON-ready dicts (for eval_test.json "collapse_warnings")."""
    return [dataclasses.asdict(w) for w in self.warnings]

  def summary(self) -> str:
    """The final summary: one line per warning and the advice, or '' when there is none."""
    if not self.warnings:
      return ""
    return "\n".join([w.message for w in self.warnings] + [self.advice()])
