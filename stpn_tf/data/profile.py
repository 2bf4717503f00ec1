"""Realism profile of a dataset in our format: the numbers a user compares between the built-in data and real features.

`profile_dataset(data_dir)` reads a dataset (stpn_tf/data/schema.py; the built-in synthetic one or converted real
features) and returns a dict with, per stream ("rgb", "flow") and for both streams concatenated ("both"):

- marginals: mean, std, share of values below 0.05, min, max over every feature value of every split (exact,
  streamed), and quantiles (1, 25, 50, 75, 99 %) over a seeded uniform sample of segments;
- cross_video_cosine: the mean cosine similarity between two segments of different videos (raw features, seeded
  pairs drawn from the same segment sample): how large the component shared by all features is;
- segment_probe: a *supervised* per-segment linear probe, trained WITH segment labels on (a seeded sample of) the
  training split's segments and scored on every segment of the test split: action-vs-background ROC AUC and the
  per-frame mAP over the classes (AP of each class's score against "segment inside a ground-truth instance of that
  class", averaged over the classes with a positive segment). It bounds what a linear read-out of one segment can
  do, with full supervision; a weakly supervised model is expected below it;
- video_probe: a linear probe on mean-pooled features (one vector per video) trained on the training videos' labels
  and scored on the test videos: classification mAP (stpn_tf/evaluation/classification.py).

A segment t is inside an instance [start, end] (seconds) when its centre time (t + 0.5) / feature_rate lies in
[start, end] (both ends included).

Probes (all constants below are ours; no paper defines this profile): plain logistic regression with an L2 penalty on
features standardized with the training statistics, trained in NumPy (minibatch Adam for segments, full-batch
accelerated gradient descent for videos); the L2 strength is chosen per stream from a grid by the cross-entropy on
held-out training videos.
- Per-segment: softmax over C + 1 outputs (C classes and background). A segment inside instances of several classes
  (overlapping instances) gets its target mass split equally among them. Action score = 1 - p(background); class
  score = p(class).
- Per-video: one-vs-rest sigmoid over the C classes (videos are multi-label; a video without labels is a negative
  for every class).

The whole dataset is never held in memory: each split is streamed once (train, then test); the probe trains on a
bounded uniform sample of the training segments, and test segments are scored as they are read.
"""

import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from stpn_tf.data import schema
from stpn_tf.evaluation import classification

STREAM_NAMES = ("rgb", "flow", "both")   # "both" = rgb and flow concatenated per segment
QUANTILES = (0.01, 0.25, 0.5, 0.75, 0.99)
LOW_VALUE = 0.05                          # "share of values below 0.05": how sparse (post-ReLU-like) features are

# Sampling bounds (ours). On the 412-video THUMOS14-like preset the whole profile takes ~30 s of CPU and 1.25 GB
# peak RSS, TensorFlow included; seeds 0 and 1 agree to ~0.01 on every probe number (BUILD_NOTES.md).
MAX_TRAIN_SEGMENTS = 20000   # training segments the per-segment probe sees (uniform sample without replacement)
POOL_SEGMENTS = 4096         # segments (all splits) sampled for the quantiles and the cosine pairs
NUM_COSINE_PAIRS = 10000     # segment pairs (of different videos) whose cosine is averaged

# Probes (ours). The L2 strength matters (on the v2 THUMOS14-like preset a fixed 1e-3 gave a video probe 8 points below
# the selected one, because features differ between videos far more than within one), so it is chosen per stream from
# a grid by the cross-entropy on held-out training videos (folds by video; the test split is never looked at).
SEGMENT_L2_GRID = (1e-3, 1e-2, 1e-1, 1.0)   # (l2 / 2) * ||W||^2 added to the mean cross-entropy
SEGMENT_HOLDOUT_FOLDS = 4             # one fold of four, i.e. 25% of the training videos, scores each l2
SEGMENT_SELECT_EPOCHS = 4             # epochs of a selection fit (the final fit runs SEGMENT_EPOCHS)
SEGMENT_EPOCHS = 8                    # minibatch Adam; at l2 >= 0.1, 24 epochs lower the loss by < 1% more
SEGMENT_MIN_STEPS = 300               # at least this many updates (small datasets: more epochs)
SEGMENT_BATCH = 256
SEGMENT_LR = 3e-3                     # Adam, cosine-decayed to 0 over the run
VIDEO_L2_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
VIDEO_FOLDS = 3                       # 3-fold cross-validation over the training videos
VIDEO_STEPS = 2000                    # full-batch accelerated gradient descent: at l2 >= 0.1 within 1% of 10000 steps
GRADIENT_TOLERANCE = 1e-7    # the accelerated solver stops early once the gradient norm is below this
STD_FLOOR = 1e-6             # a constant training dimension is standardized to 0, not divided by 0

_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


# ------------------------------------------------------------------------------------------------- helpers


def segment_labels(video: schema.Video, num_classes: int, feature_rate: float) -> np.ndarray:
  """Multi-hot [T, C] bool: segment t is inside an instance of class c (centre time within [start, end])."""
  centres = (np.arange(video.num_segments) + 0.5) / feature_rate            # [T] seconds
  out = np.zeros((video.num_segments, num_classes), bool)
  segments = np.asarray(video.segments, np.float64).reshape(-1, 2)
  for (start, end), c in zip(segments, np.asarray(video.segment_labels)):
    out[:, int(c)] |= (centres >= start) & (centres <= end)
  return out


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
  """Area under the ROC curve (Mann-Whitney U / (n_pos * n_neg)); tied scores count one half.

  Args:
    scores: float [N].
    labels: bool or {0, 1} [N].

  Returns:
    The AUC, or NaN when there is no positive or no negative.
  """
  scores = np.asarray(scores, np.float64).ravel()
  labels = np.asarray(labels).astype(bool).ravel()
  num_pos = int(labels.sum())
  num_neg = labels.size - num_pos
  if num_pos == 0 or num_neg == 0:
    return float("nan")
  order = np.argsort(scores, kind="stable")
  sorted_scores = scores[order]
  # Average rank (1-based) of each tie group.
  starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
  ends = np.r_[starts[1:], scores.size]
  group_rank = (starts + 1 + ends) / 2.0
  ranks = np.empty(scores.size)
  ranks[order] = np.repeat(group_rank, ends - starts)
  u = ranks[labels].sum() - num_pos * (num_pos + 1) / 2.0
  return float(u / (num_pos * num_neg))


class _Marginals:
  """Exact streamed marginals of every value of one stream."""

  def __init__(self):
    self.count = 0
    self.total = 0.0
    self.total_sq = 0.0
    self.below = 0
    self.min = np.inf
    self.max = -np.inf

  def add(self, x: np.ndarray) -> None:
    if x.size == 0:
      return
    self.count += x.size
    self.total += float(np.sum(x, dtype=np.float64))
    self.total_sq += float(np.sum(np.square(x, dtype=np.float64)))
    self.below += int(np.count_nonzero(x < LOW_VALUE))
    self.min = min(self.min, float(x.min()))
    self.max = max(self.max, float(x.max()))

  @staticmethod
  def merged(parts: Sequence["_Marginals"]) -> "_Marginals":
    out = _Marginals()
    for p in parts:
      out.count += p.count
      out.total += p.total
      out.total_sq += p.total_sq
      out.below += p.below
      out.min = min(out.min, p.min)
      out.max = max(out.max, p.max)
    return out

  def result(self, sample: np.ndarray) -> Dict:
    mean = self.total / self.count
    var = max(self.total_sq / self.count - mean * mean, 0.0)
    quantiles = np.quantile(sample.astype(np.float64), QUANTILES) if sample.size else [np.nan] * len(QUANTILES)
    return {"mean": mean, "std": float(np.sqrt(var)), "share_below_0.05": self.below / self.count,
            "min": self.min, "max": self.max,
            "quantiles": {f"p{round(100 * q):02d}": float(v) for q, v in zip(QUANTILES, quantiles)}}


class _UniformSample:
  """A uniform sample without replacement of at most `capacity` rows from a stream (bottom-k of random keys).

  Each row gets an independent uniform key; the rows with the `capacity` smallest keys are kept. Memory is bounded
  by the capacity, the result is a function of the seed and the stream order only.
  """

  def __init__(self, capacity: int, rng: np.random.Generator):
    self.capacity = int(capacity)
    self._rng = rng
    self._keys = np.zeros((0,))
    self._columns: Optional[List[np.ndarray]] = None
    self._size = 0

  def add(self, *columns: np.ndarray) -> None:
    n = columns[0].shape[0]
    keys = self._rng.random(n)
    if self._columns is None:
      self._columns = [np.empty((self.capacity,) + c.shape[1:], c.dtype) for c in columns]
      self._keys = np.empty((self.capacity,))
    free = self.capacity - self._size
    if free > 0:                                  # still filling: take rows as they come
      take = min(free, n)
      for store, c in zip(self._columns, columns):
        store[self._size:self._size + take] = c[:take]
      self._keys[self._size:self._size + take] = keys[:take]
      self._size += take
      columns = [c[take:] for c in columns]
      keys = keys[take:]
      if keys.size == 0:
        return
    candidates = np.flatnonzero(keys < self._keys.max())
    if candidates.size == 0:
      return
    merged = np.concatenate([self._keys, keys[candidates]])
    keep = np.argpartition(merged, self.capacity - 1)[:self.capacity]
    kept = np.zeros(merged.size, bool)
    kept[keep] = True
    dropped_slots = np.flatnonzero(~kept[:self.capacity])      # old rows that leave
    incoming = candidates[np.flatnonzero(kept[self.capacity:])]  # new rows that enter (same count)
    for store, c in zip(self._columns, columns):
      store[dropped_slots] = c[incoming]
    self._keys[dropped_slots] = keys[incoming]

  def columns(self) -> List[np.ndarray]:
    if self._columns is None:
      return []
    return [c[:self._size] for c in self._columns]


def _read_split(data_dir: str, manifest: schema.Manifest, split: str):
  """Yields the videos of a split in file order (as schema.read_videos, parsed in a tf.data graph: faster)."""
  paths = manifest.shard_paths(data_dir, split)
  parse = schema.parse_fn(manifest)
  records = tf.data.Dataset.from_tensor_slices(paths).flat_map(
      lambda path: tf.data.TFRecordDataset(path).map(lambda record: (path, record)))
  videos = records.map(parse, num_parallel_calls=2, deterministic=True).prefetch(2)
  for v in videos.as_numpy_iterator():
    yield schema.Video(video_id=v["video_id"].decode("utf-8"), labels=np.flatnonzero(v["labels"] > 0),
                       duration=float(v["duration"]), rgb=v["rgb"], flow=v["flow"], segments=v["segments"],
                       segment_labels=v["segment_labels"].astype(np.int64))


def _stream_columns(dims: Dict[str, int], stream: str) -> slice:
  """The columns of one stream in a concatenated [N, D_rgb + D_flow] array."""
  return {"rgb": slice(0, dims["rgb"]), "flow": slice(dims["rgb"], None), "both": slice(None)}[stream]


def _split_stream(x: np.ndarray, dims: Dict[str, int], stream: str) -> np.ndarray:
  return x[:, _stream_columns(dims, stream)]


def _cosine_pairs(rows: np.ndarray, video_index: np.ndarray, num_pairs: int, rng: np.random.Generator):
  """Indices (i, j) of up to num_pairs random pairs of pooled segments from different videos."""
  if rows.shape[0] < 2 or np.unique(video_index).size < 2:
    return None
  first, second = [], []
  need = num_pairs
  for _ in range(100):   # rejection of same-video pairs; a handful of rounds unless one video dominates the pool
    i = rng.integers(rows.shape[0], size=2 * need)
    j = rng.integers(rows.shape[0], size=2 * need)
    ok = video_index[i] != video_index[j]
    first.append(i[ok][:need])
    second.append(j[ok][:need])
    need -= first[-1].size
    if need <= 0:
      break
  return np.concatenate(first), np.concatenate(second)


def _mean_cosine(rows: np.ndarray, first: np.ndarray, second: np.ndarray) -> float:
  """Mean cosine of rows[first[k]] and rows[second[k]]; pairs with an all-zero row (no direction) are left out."""
  norms = np.linalg.norm(rows.astype(np.float64), axis=1)
  unit = (rows / np.maximum(norms, 1e-30)[:, None]).astype(np.float32)
  valid = (norms[first] > 0) & (norms[second] > 0)
  if not valid.any():
    return float("nan")
  cos = np.einsum("nd,nd->n", unit[first[valid]], unit[second[valid]], dtype=np.float64)
  return float(np.mean(cos))


# ----------------------------------------------------------------------------------------------- probes


class _Standardizer:
  """Per-dimension standardization with the training statistics."""

  def __init__(self, x: np.ndarray):
    self.mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = x.std(axis=0, dtype=np.float64)
    self.scale = np.where(std > STD_FLOOR, 1.0 / np.maximum(std, STD_FLOOR), 0.0).astype(np.float32)

  def __call__(self, x: np.ndarray) -> np.ndarray:
    return (x - self.mean) * self.scale

  def columns(self, cols: slice) -> "_Standardizer":
    """The standardizer of a subset of the dimensions (statistics are per dimension)."""
    out = object.__new__(_Standardizer)
    out.mean, out.scale = self.mean[cols], self.scale[cols]
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
  z = logits - logits.max(axis=1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=1, keepdims=True)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
  return 0.5 * (1.0 + np.tanh(0.5 * logits))   # overflow-free logistic


class LinearProbe:
  """Logistic regression (softmax or one-vs-rest sigmoid) with L2 on standardized features.

  Loss: mean over samples of the cross-entropy (softmax: -sum_k y_k log p_k; sigmoid: the sum over outputs of the
  binary cross-entropies) + (l2 / 2) * ||W||^2 (the bias is not penalized). The gradient of either cross-entropy with
  respect to the logits is p - y.

  Solvers: "adam" (minibatch Adam, `steps` epochs of `batch_size`, at least `min_steps` updates) for many samples;
  "accelerated" (full-batch Nesterov gradient descent with the step 1/L of the smoothness bound, at most `steps`
  iterations, stopping once the gradient norm is below GRADIENT_TOLERANCE) for few samples in many dimensions: it
  runs in the span of the training samples (W = Z^T A, exact for an L2-penalized loss), so one step costs N x N x K
  instead of N x D x K.
  """

  def __init__(self, kind: str, l2: float, solver: str, steps: int, batch_size: int = 256,
               learning_rate: float = 3e-3, seed: int = 0, min_steps: int = 0):
    if kind not in ("softmax", "sigmoid"):
      raise ValueError(f"unknown probe kind {kind!r}")
    if solver not in ("adam", "accelerated"):
      raise ValueError(f"unknown solver {solver!r}")
    self.kind, self.l2, self.solver, self.steps, self.batch_size, self.lr, self.seed = (
        kind, l2, solver, steps, batch_size, learning_rate, seed)
    self.min_steps = min_steps

  def _activate(self, logits: np.ndarray) -> np.ndarray:
    return _softmax(logits) if self.kind == "softmax" else _sigmoid(logits)

  def _probs(self, z: np.ndarray) -> np.ndarray:
    return self._activate(z @ self.w + self.b)

  def cross_entropy_standardized(self, z: np.ndarray, y: np.ndarray) -> float:
    """The data term of the loss (mean cross-entropy) on standardized features."""
    p = np.clip(self._probs(z).astype(np.float64), 1e-12, 1 - 1e-12)
    if self.kind == "softmax":
      ce = -np.sum(y * np.log(p), axis=1)
    else:
      ce = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p), axis=1)
    return float(np.mean(ce))

  def loss_standardized(self, z: np.ndarray, y: np.ndarray) -> float:
    """The training objective (data term + L2) on standardized features."""
    return self.cross_entropy_standardized(z, y) + 0.5 * self.l2 * float(np.sum(np.square(self.w, dtype=np.float64)))

  def loss(self, x: np.ndarray, y: np.ndarray) -> float:
    """The training objective on raw features."""
    return self.loss_standardized(self.standardize(np.asarray(x, np.float32)), y)

  def fit(self, x: np.ndarray, y: np.ndarray) -> "LinearProbe":
    """Trains on x [N, D] float, y [N, K] targets (softmax: rows sum to 1; sigmoid: {0, 1})."""
    x = np.asarray(x, np.float32)
    standardize = _Standardizer(x)
    return self.fit_standardized(standardize(x), y, standardize)

  def fit_standardized(self, z: np.ndarray, y: np.ndarray, standardize: _Standardizer) -> "LinearProbe":
    """Trains on features already standardized by `standardize` (computed on the training features)."""
    self.standardize = standardize
    y = np.asarray(y, np.float32)
    k = y.shape[1]
    self.w = np.zeros((z.shape[1], k), np.float32)
    self.b = np.zeros((k,), np.float32)
    if self.kind == "softmax":   # start at the class priors: fewer steps spent learning the background share
      self.b = np.log(np.maximum(y.mean(axis=0), 1e-6)).astype(np.float32)
    if self.solver == "adam":
      self._fit_adam(z, y)
    else:
      self._fit_accelerated(z, y)
    return self

  def _fit_adam(self, z: np.ndarray, y: np.ndarray) -> None:
    n = z.shape[0]
    batch = min(self.batch_size, n)
    steps_per_epoch = -(-n // batch)
    epochs = max(self.steps, -(-self.min_steps // steps_per_epoch))
    total = epochs * steps_per_epoch
    rng = np.random.default_rng(self.seed)
    m = [np.zeros_like(self.w), np.zeros_like(self.b)]
    v = [np.zeros_like(self.w), np.zeros_like(self.b)]
    b1, b2 = _ADAM_BETAS
    step = 0
    for _ in range(epochs):
      order = rng.permutation(n)
      for s in range(steps_per_epoch):
        idx = order[s * batch:(s + 1) * batch]
        zb = z[idx]
        g = (self._probs(zb) - y[idx]) / idx.size                   # [B, K] d(mean CE)/d(logits)
        grads = [zb.T @ g + self.l2 * self.w, g.sum(axis=0)]
        step += 1
        lr = self.lr * 0.5 * (1.0 + np.cos(np.pi * (step - 1) / total))   # cosine decay to 0
        for param, grad, mi, vi in zip((self.w, self.b), grads, m, v):
          mi *= b1
          mi += (1 - b1) * grad
          vi *= b2
          vi += (1 - b2) * np.square(grad)
          m_hat = mi / (1 - b1 ** step)
          v_hat = vi / (1 - b2 ** step)
          param -= (lr * m_hat / (np.sqrt(v_hat) + _ADAM_EPS)).astype(np.float32)

  def _fit_accelerated(self, z: np.ndarray, y: np.ndarray) -> None:
    z64 = z.astype(np.float64)
    y64 = y.astype(np.float64)
    n = z64.shape[0]
    gram = z64 @ z64.T                                                    # [N, N]
    # Smoothness of the mean cross-entropy in (W, b): the curvature of the sigmoid / softmax is at most 1/4 / 1/2
    # times the largest eigenvalue of [Z 1]^T [Z 1] / N; plus l2.
    curvature = 0.25 if self.kind == "sigmoid" else 0.5
    lipschitz = curvature * float(np.linalg.eigvalsh(gram + 1.0)[-1]) / n + self.l2
    step = 1.0 / lipschitz
    kappa = lipschitz / max(self.l2, 1e-12)
    momentum = (np.sqrt(kappa) - 1.0) / (np.sqrt(kappa) + 1.0)   # the strongly convex Nesterov constant
    a = np.zeros((n, y64.shape[1]))                                        # W = Z^T a
    b = self.b.astype(np.float64)
    a_prev, b_prev = a, b
    for step_index in range(self.steps):
      a_look = a + momentum * (a - a_prev)
      b_look = b + momentum * (b - b_prev)
      g = (self._activate(gram @ a_look + b_look) - y64) / n             # [N, K]
      if step_index % 50 == 49:   # converged: the gradient in (W, b) is ~0 (|Z^T r|^2 = r^T gram r)
        r = g + self.l2 * a_look
        if np.sqrt(np.sum(r * (gram @ r)) + np.sum(np.square(g.sum(axis=0)))) < GRADIENT_TOLERANCE:
          a, b = a_look, b_look
          break
      a_prev, b_prev = a, b
      a = a_look - step * (g + self.l2 * a_look)        # the primal step W -= step (Z^T g + l2 W), written in a
      b = b_look - step * g.sum(axis=0)
    self.w = (z64.T @ a).astype(np.float32)
    self.b = b.astype(np.float32)

  def predict(self, x: np.ndarray) -> np.ndarray:
    """Probabilities [N, K]."""
    return self._probs(self.standardize(np.asarray(x, np.float32)))


def _segment_probe(l2: float, epochs: int, seed: int) -> LinearProbe:
  return LinearProbe("softmax", l2, "adam", epochs, SEGMENT_BATCH, SEGMENT_LR, seed, min_steps=SEGMENT_MIN_STEPS)


def _video_probe(l2: float, seed: int) -> LinearProbe:
  return LinearProbe("sigmoid", l2, "accelerated", VIDEO_STEPS, seed=seed)


def _fold_of_group(groups: np.ndarray, num_folds: int, rng: np.random.Generator) -> np.ndarray:
  """Fold index of every sample; all samples of a group (video) share a fold."""
  unique, inverse = np.unique(groups, return_inverse=True)
  folds = np.empty(unique.size, np.int64)
  folds[rng.permutation(unique.size)] = np.arange(unique.size) % num_folds
  return folds[inverse]


def select_and_fit(make_probe, grid: Sequence[float], z: np.ndarray, y: np.ndarray, groups: np.ndarray,
                   standardize: _Standardizer, num_folds: int, folds_used: int, rng: np.random.Generator,
                   make_final=None):
  """Chooses l2 from `grid` by the held-out cross-entropy (folds by group), then fits on all of (z, y).

  Args:
    make_probe: l2 -> an untrained LinearProbe (used for the selection fits).
    grid: candidate l2 values.
    z, y: standardized training features [N, D] and targets [N, K].
    groups: [N] group (video) of each sample; a group is never split between fitting and scoring.
    standardize: the standardizer of z (computed on all of it; the folds share it).
    num_folds: number of folds; folds_used of them are held out in turn (1 = a single holdout).
    rng: draws the folds.
    make_final: l2 -> the probe of the final fit (default make_probe).

  Returns:
    (the fitted probe, {"l2": chosen, "validation_cross_entropy": {l2: mean held-out cross-entropy}}); with fewer
    than two groups no selection is possible and the middle of the grid is used.
  """
  make_final = make_final or make_probe
  num_groups = np.unique(groups).size
  scores = {}
  if num_groups >= 2:
    num_folds = min(num_folds, num_groups)
    fold = _fold_of_group(groups, num_folds, rng)
    for l2 in grid:
      held_out = []
      for f in range(min(folds_used, num_folds)):
        fit_rows, val_rows = fold != f, fold == f
        probe = make_probe(l2).fit_standardized(z[fit_rows], y[fit_rows], standardize)
        held_out.append(probe.cross_entropy_standardized(z[val_rows], y[val_rows]))
      scores[l2] = float(np.mean(held_out))
    best = min(scores, key=scores.get)
  else:
    best = grid[len(grid) // 2]
  probe = make_final(best).fit_standardized(z, y, standardize)
  probe.train_loss = probe.loss_standardized(z, y)
  return probe, {"l2": best, "validation_cross_entropy": {f"{k:g}": v for k, v in scores.items()}}


def _segment_targets(labels: np.ndarray) -> np.ndarray:
  """[T, C] multi-hot -> [T, C + 1] softmax targets (last column: background); mass split among overlapping classes."""
  counts = labels.sum(axis=1, keepdims=True)
  targets = np.concatenate([labels.astype(np.float32), (counts == 0).astype(np.float32)], axis=1)
  return targets / np.maximum(targets.sum(axis=1, keepdims=True), 1.0)


# ------------------------------------------------------------------------------------------------- profile


def profile_dataset(data_dir: str, train_split: str = "train", test_split: str = "test", seed: int = 0,
                    max_train_segments: int = MAX_TRAIN_SEGMENTS, pool_segments: int = POOL_SEGMENTS,
                    num_cosine_pairs: int = NUM_COSINE_PAIRS) -> Dict:
  """Computes the realism profile of one dataset directory (see the module docstring).

  Args:
    data_dir: a dataset directory (manifest.json + shards).
    train_split: split the probes train on.
    test_split: split the probes are scored on.
    seed: seeds every sample (segments, pairs, minibatch order); the same seed gives the same numbers.
    max_train_segments: bound on the training segments of the per-segment probe.
    pool_segments: segments (over both splits) sampled for quantiles and cosines.
    num_cosine_pairs: pairs of segments of different videos averaged for the cosine.

  Returns:
    A JSON-serializable dict: "data_dir", "dataset" (classes, rate, dims, provenance), "splits" (videos, segments,
    share of segments inside instances, videos with ground truth), "settings", "streams" {rgb, flow, both: {
    "marginals", "cross_video_cosine", "action_mass_ratio" (mean L1 norm of segments inside instances over that of
    the others; None without ground truth), "segment_probe" (or None), "video_probe" (or None)}}, "skipped" {probe:
    reason}, "seconds".

  Raises:
    schema.DataFormatError: missing or incomplete directory, or a missing train / test split (the message names
      the directory and the splits it has).
  """
  start_time = time.time()
  manifest = schema.read_manifest(data_dir)
  for role, split in (("test", test_split), ("train", train_split)):
    if split not in manifest.splits:
      raise schema.DataFormatError(
          f"{data_dir}: no {role} split {split!r} (the probes train on {train_split!r} and are scored on "
          f"{test_split!r}); the dataset has splits {sorted(manifest.splits)}")
  if train_split == test_split:
    raise ValueError(f"the train and test splits must differ, both are {train_split!r}")
  num_classes = manifest.num_classes
  rate = float(manifest.feature_rate)
  dims = {s: int(manifest.feature_dims[s]) for s in schema.STREAMS}
  seeds = np.random.SeedSequence(seed).spawn(3)
  pool = _UniformSample(pool_segments, np.random.default_rng(seeds[0]))
  train_sample = _UniformSample(max_train_segments, np.random.default_rng(seeds[1]))
  marginals = {s: _Marginals() for s in schema.STREAMS}
  splits = {}
  skipped = {}
  selection = {}   # (probe, stream) -> the l2 chosen and the validation losses

  # L1 mass (sum over channels) of segments inside / outside instances, per stream: [sum inside, n inside, sum
  # outside, n outside]. Whether an action adds activation to the context or replaces part of it is what decided
  # whether the printed methods learn on the built-in data (BUILD_NOTES.md, "Built-in benchmark v3").
  mass = {s: np.zeros(4) for s in STREAM_NAMES}

  def read(split, split_code, on_video):
    info = {"videos": 0, "segments": 0, "segments_in_instances": 0, "videos_with_ground_truth": 0}
    for i, video in enumerate(_read_split(data_dir, manifest, split)):
      for s in schema.STREAMS:
        marginals[s].add(getattr(video, s))
      x = np.concatenate([video.rgb, video.flow], axis=1)                    # [T, D_rgb + D_flow]
      pool.add(x, np.full(video.num_segments, split_code * 10 ** 9 + i))
      labels = segment_labels(video, num_classes, rate)                       # [T, C]
      inside = labels.any(axis=1)
      for s in STREAM_NAMES:
        l1 = _split_stream(x, dims, s).sum(axis=1, dtype=np.float64)          # [T] (features are >= 0 or signed)
        mass[s] += (l1[inside].sum(), inside.sum(), l1[~inside].sum(), (~inside).sum())
      info["videos"] += 1
      info["segments"] += video.num_segments
      info["segments_in_instances"] += int(labels.any(axis=1).sum())
      info["videos_with_ground_truth"] += int(np.asarray(video.segment_labels).size > 0)
      on_video(video, x, labels)
    if info["videos"] == 0:
      raise schema.DataFormatError(f"{data_dir}: split {split!r} has no videos")
    info["share_in_instances"] = info["segments_in_instances"] / info["segments"]
    splits[split] = info

  # Pass 1: the training split.
  train_means, train_video_labels = [], []

  def on_train(video, x, labels):
    train_sample.add(x, _segment_targets(labels), np.full(video.num_segments, len(train_means)))
    train_means.append(x.mean(axis=0))
    train_video_labels.append(_multi_hot(video.labels, num_classes))

  read(train_split, 0, on_train)

  segment_probes = {}
  if splits[train_split]["videos_with_ground_truth"] == 0:
    skipped["segment_probe"] = (f"the {train_split!r} split has no ground-truth instances: the supervised "
                                "per-segment probe needs segment labels")
  else:
    x_train, t_train, v_train = train_sample.columns()
    standardize = _Standardizer(x_train)    # per dimension: the streams' standardizers are its column subsets
    z_train = standardize(x_train)
    del x_train
    for k, s in enumerate(STREAM_NAMES):
      cols = _stream_columns(dims, s)
      segment_probes[s], selection[("segment_probe", s)] = select_and_fit(
          lambda l2, k=k: _segment_probe(l2, SEGMENT_SELECT_EPOCHS, seed + k), SEGMENT_L2_GRID, z_train[:, cols],
          t_train, v_train, standardize.columns(cols), SEGMENT_HOLDOUT_FOLDS, 1,
          np.random.default_rng([seed, 1, k]),
          make_final=lambda l2, k=k: _segment_probe(l2, SEGMENT_EPOCHS, seed + k))
    del z_train, t_train
  video_probes = {}
  train_means = np.stack(train_means)
  train_video_labels = np.stack(train_video_labels)
  if not train_video_labels.any():
    skipped["video_probe"] = f"no video of the {train_split!r} split has a class label"
  else:
    for k, s in enumerate(STREAM_NAMES):
      x = _split_stream(train_means, dims, s)
      standardize = _Standardizer(x)
      video_probes[s], selection[("video_probe", s)] = select_and_fit(
          lambda l2, k=k: _video_probe(l2, seed + k), VIDEO_L2_GRID, standardize(x), train_video_labels,
          np.arange(x.shape[0]), standardize, VIDEO_FOLDS, VIDEO_FOLDS, np.random.default_rng([seed, 2, k]))

  # Pass 2: the test split, scored as it streams.
  action_scores = {s: [] for s in segment_probes}
  class_scores = {s: [] for s in segment_probes}
  test_segment_labels, test_means, test_video_labels = [], [], []

  def on_test(video, x, labels):
    for s, probe in segment_probes.items():
      p = probe.predict(_split_stream(x, dims, s))                     # [T, C + 1]
      action_scores[s].append(1.0 - p[:, -1])
      class_scores[s].append(p[:, :-1])
    test_segment_labels.append(labels)
    test_means.append(x.mean(axis=0))
    test_video_labels.append(_multi_hot(video.labels, num_classes))

  read(test_split, 1, on_test)

  streams = {s: {} for s in STREAM_NAMES}
  pool_rows, pool_videos = pool.columns()
  pairs = _cosine_pairs(pool_rows, pool_videos, num_cosine_pairs, np.random.default_rng(seeds[2]))
  for s in STREAM_NAMES:
    parts = [marginals[t] for t in (schema.STREAMS if s == "both" else (s,))]
    streams[s]["marginals"] = _Marginals.merged(parts).result(_split_stream(pool_rows, dims, s))
    streams[s]["cross_video_cosine"] = (None if pairs is None else _mean_cosine(
        _split_stream(pool_rows, dims, s), pairs[0], pairs[1]))
    m_in, n_in, m_out, n_out = mass[s]
    streams[s]["action_mass_ratio"] = (float((m_in / n_in) / (m_out / n_out))
                                       if n_in and n_out and m_out else None)

  labels = np.concatenate(test_segment_labels)                                 # [N_test, C]
  if segment_probes and splits[test_split]["videos_with_ground_truth"] == 0:
    skipped["segment_probe"] = (f"the {test_split!r} split has no ground-truth instances: the per-segment probe "
                                "cannot be scored without segment labels")
    segment_probes = {}
  for s in STREAM_NAMES:
    if s not in segment_probes:
      streams[s]["segment_probe"] = None
      continue
    action = np.concatenate(action_scores[s])
    result = {"action_auc": roc_auc(action, labels.any(axis=1)),
              "train_loss": segment_probes[s].train_loss, **selection[("segment_probe", s)]}
    if labels.any():
      per_frame = classification.classification_map(np.concatenate(class_scores[s]), labels)
      result.update(per_frame_map=per_frame.mAP, per_frame_classes=per_frame.num_classes_evaluated,
                    per_frame_ap=[None if np.isnan(a) else float(a) for a in per_frame.ap])
    streams[s]["segment_probe"] = result

  test_means = np.stack(test_means)
  test_video_labels = np.stack(test_video_labels)
  if video_probes and not test_video_labels.any():
    skipped["video_probe"] = f"no video of the {test_split!r} split has a class label"
    video_probes = {}
  for s in STREAM_NAMES:
    if s not in video_probes:
      streams[s]["video_probe"] = None
      continue
    scores = video_probes[s].predict(_split_stream(test_means, dims, s))
    result = classification.classification_map(scores, test_video_labels)
    streams[s]["video_probe"] = {"classification_map": result.mAP, "classes": result.num_classes_evaluated,
                                 "train_loss": video_probes[s].train_loss, **selection[("video_probe", s)]}

  return _json_safe({
      "data_dir": str(data_dir),
      "dataset": {"num_classes": num_classes, "feature_rate": rate, "feature_dims": dims,
                  "provenance": {k: manifest.extra[k] for k in ("generator", "generator_version", "preset", "seed")
                                 if k in manifest.extra}},
      "splits": {"train": splits[train_split], "test": splits[test_split],
                 "names": {"train": train_split, "test": test_split}},
      "settings": {"seed": seed, "max_train_segments": max_train_segments,
                   "train_segments_used": min(max_train_segments, splits[train_split]["segments"]),
                   "pool_segments": int(pool_rows.shape[0]),
                   "cosine_pairs": 0 if pairs is None else int(pairs[0].size),
                   "segment_probe": {"kind": "softmax over C + 1 (background last), minibatch Adam",
                                     "l2_grid": list(SEGMENT_L2_GRID), "holdout": f"1/{SEGMENT_HOLDOUT_FOLDS} of "
                                     "the training videos", "select_epochs": SEGMENT_SELECT_EPOCHS,
                                     "epochs": SEGMENT_EPOCHS, "min_steps": SEGMENT_MIN_STEPS,
                                     "batch": SEGMENT_BATCH, "lr": SEGMENT_LR},
                   "video_probe": {"kind": "one-vs-rest sigmoid, full-batch accelerated gradient descent",
                                   "l2_grid": list(VIDEO_L2_GRID), "folds": VIDEO_FOLDS, "steps": VIDEO_STEPS}},
      "streams": streams,
      "skipped": skipped,
      "seconds": time.time() - start_time,
  })


def _json_safe(value):
  """NaN (an undefined AUC or AP) -> None, so the dict is valid JSON; NumPy scalars -> Python numbers."""
  if isinstance(value, dict):
    return {k: _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  if isinstance(value, (float, np.floating)):
    return None if np.isnan(value) else float(value)
  if isinstance(value, np.integer):
    return int(value)
  return value


def _multi_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
  out = np.zeros((num_classes,), np.float32)
  out[np.asarray(labels, np.int64)] = 1.0
  return out


# ------------------------------------------------------------------------------------------------- printing


def _fmt(value, digits=3, percent=False) -> str:
  if value is None or (isinstance(value, float) and np.isnan(value)):
    return "-"
  return f"{100 * value:.1f}%" if percent else f"{value:.{digits}f}"


def format_profile(profile: Dict) -> str:
  """The profile as a readable table (one column per stream)."""
  d = profile["dataset"]
  prov = d["provenance"]
  origin = (f" ({prov.get('generator', '')} v{prov.get('generator_version', '?')}, preset {prov.get('preset', '?')}, "
            f"seed {prov.get('seed', '?')})" if prov else "")
  lines = [f"Dataset realism profile of {profile['data_dir']}{origin}",
           f"  {d['num_classes']} classes, {d['feature_rate']:.4f} features/s, dims {d['feature_dims']}"]
  for role in ("train", "test"):
    s = profile["splits"][role]
    lines.append(f"  {role} ({profile['splits']['names'][role]}): {s['videos']} videos, {s['segments']} segments, "
                 f"{100 * s['share_in_instances']:.1f}% inside instances, {s['videos_with_ground_truth']} videos "
                 "with ground truth")
  st = profile["settings"]
  lines.append(f"  per-segment probe on {st['train_segments_used']} sampled training segments; quantiles from "
               f"{st['pool_segments']} sampled segments; cosine over {st['cosine_pairs']} pairs; seed {st['seed']}")
  streams = profile["streams"]
  rows = [("mean", lambda s: _fmt(s["marginals"]["mean"], 4)),
          ("std", lambda s: _fmt(s["marginals"]["std"], 4)),
          ("share < 0.05", lambda s: _fmt(s["marginals"]["share_below_0.05"], percent=True)),
          ("min", lambda s: _fmt(s["marginals"]["min"], 4)),
          ("max", lambda s: _fmt(s["marginals"]["max"], 4))]
  for q in streams["rgb"]["marginals"]["quantiles"]:
    rows.append((f"quantile {q}", lambda s, q=q: _fmt(s["marginals"]["quantiles"][q], 4)))
  rows.append(("cosine, different videos", lambda s: _fmt(s["cross_video_cosine"])))
  rows.append(("L1 mass, action / background", lambda s: _fmt(s.get("action_mass_ratio"))))
  rows.append(("segment probe: action AUC", lambda s: _fmt((s["segment_probe"] or {}).get("action_auc"))))
  rows.append(("segment probe: per-frame mAP",
               lambda s: _fmt((s["segment_probe"] or {}).get("per_frame_map"), percent=True)))
  rows.append(("video probe: classif. mAP",
               lambda s: _fmt((s["video_probe"] or {}).get("classification_map"), percent=True)))
  width = max(len(name) for name, _ in rows) + 2
  lines.append("")
  lines.append(" " * width + "".join(f"{s:>10s}" for s in STREAM_NAMES))
  for name, get in rows:
    lines.append(f"{name:<{width}s}" + "".join(f"{get(streams[s]):>10s}" for s in STREAM_NAMES))
  for probe, reason in profile["skipped"].items():
    lines.append(f"skipped {probe}: {reason}")
  lines.append(f"({profile['seconds']:.1f} s)")
  return "\n".join(lines)
