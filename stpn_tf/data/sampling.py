"""Training-time segment sampling strategies (TensorFlow ops, usable inside tf.data).

Each sampler maps (num_segments T, stateless seed [2]) to (indices [N] int32, mask [N] float32). Positions whose
mask is 0 are padding: their index is 0 and every pooling and loss must ignore them. Videos shorter than N are
never stretched or repeated; they are padded (the mask then has exactly T ones).

Samplers are gin-configurable classes so a config chooses one by reference, e.g.
`make_train_dataset.sampler = @UniformPerturbedSampler()`.
"""

import math
from typing import Optional

import gin
import tensorflow as tf


def _pad(indices, num_valid, n):
  """Pads indices [k] (k <= n) with zeros to [n] and returns the matching mask."""
  indices = tf.cast(indices, tf.int32)
  pad = n - tf.shape(indices)[0]
  indices = tf.pad(indices, [[0, pad]])
  mask = tf.cast(tf.range(n) < num_valid, tf.float32)
  return indices, mask


@gin.configurable
class UniformPerturbedSampler:
  """STPN (Nguyen et al. 2018, section 4.2): N segments at uniform intervals with stratified random perturbation.

  The video's T segments are split into N equal bins [i*T/N, (i+1)*T/N) and one index is drawn uniformly inside
  each bin. With perturb=False the bin centres are taken (the deterministic uniform sampling of testing).
  """

  def __init__(self, num_segments: int = 400, perturb: bool = True):
    self.num_segments = int(num_segments)
    self.perturb = perturb

  @property
  def output_length(self):
    return self.num_segments

  def __call__(self, length, seed):
    n = self.num_segments
    length = tf.cast(length, tf.int32)

    def long_video():
      edges = tf.linspace(0.0, tf.cast(length, tf.float32), n + 1)      # [N + 1]
      if self.perturb:
        u = tf.random.stateless_uniform([n], seed=seed)
      else:
        u = tf.fill([n], 0.5)
      idx = tf.floor(edges[:-1] + u * (edges[1:] - edges[:-1]))
      idx = tf.clip_by_value(tf.cast(idx, tf.int32), 0, length - 1)
      return idx, tf.ones([n], tf.float32)

    def short_video():
      return _pad(tf.range(length), length, n)

    return tf.cond(length >= n, long_video, short_video)


@gin.configurable
class RandomWindowSampler:
  """A random contiguous window of N segments (W-TALC / HAM-Net style); shorter videos are padded."""

  def __init__(self, num_segments: int = 500):
    self.num_segments = int(num_segments)

  @property
  def output_length(self):
    return self.num_segments

  def __call__(self, length, seed):
    n = self.num_segments
    length = tf.cast(length, tf.int32)

    def long_video():
      start = tf.random.stateless_uniform([], seed=seed, minval=0, maxval=length - n + 1, dtype=tf.int32)
      return start + tf.range(n), tf.ones([n], tf.float32)

    return tf.cond(length >= n, long_video, lambda: _pad(tf.range(length), length, n))


@gin.configurable
class RandomSubsetSampler:
  """A random subset of N distinct segments kept in temporal order; shorter videos are padded."""

  def __init__(self, num_segments: int = 500):
    self.num_segments = int(num_segments)

  @property
  def output_length(self):
    return self.num_segments

  def __call__(self, length, seed):
    n = self.num_segments
    length = tf.cast(length, tf.int32)

    def long_video():
      # Random keys + top_k = a uniformly random subset without replacement; sort to keep temporal order.
      keys = tf.random.stateless_uniform([length], seed=seed)
      _, idx = tf.math.top_k(keys, k=n)
      return tf.sort(idx), tf.ones([n], tf.float32)

    return tf.cond(length >= n, long_video, lambda: _pad(tf.range(length), length, n))


@gin.configurable
class AllSegmentsSampler:
  """Every segment of the video (Nguyen et al. 2019, section 4.2); batches are padded to the longest video.

  Bucketed padding (ours, for speed): with bucket_ratio, a video of T segments is padded (mask 0) to the next of
  a few bucket lengths, min_bucket, then each previous one times bucket_ratio rounded up to a multiple of
  `multiple`, so that a compiled (XLA) step sees a handful of shapes instead of one per length; the real
  segments come first, in order, as without buckets, and every loss ignores the padding (the per-video math is
  unchanged; tests/models/bgm_bucket_test.py). A video longer than the last bucket (2^20 segments) keeps its
  length. bucket_ratio = None: exactly T (no padding).
  """

  output_length = None
  _MAX_BUCKET = 2**20

  def __init__(self, bucket_ratio: Optional[float] = 1.25, min_bucket: int = 64, multiple: int = 8):
    if bucket_ratio is not None and not bucket_ratio > 1.0:
      raise ValueError(f"AllSegmentsSampler.bucket_ratio must be > 1 or None, got {bucket_ratio}")
    if min_bucket < 1 or multiple < 1:
      raise ValueError(f"AllSegmentsSampler.min_bucket and multiple must be >= 1, got {min_bucket}, {multiple}")
    self.bucket_ratio = bucket_ratio
    self.buckets = []
    if bucket_ratio is not None:
      b = -(-int(min_bucket) // multiple) * multiple
      while b <= self._MAX_BUCKET:
        self.buckets.append(b)
        b = max(b + multiple, -(-int(math.ceil(b * bucket_ratio)) // multiple) * multiple)

  def bucket_length(self, length):
    """The padded length of a video of `length` segments ([] int32)."""
    length = tf.cast(length, tf.int32)
    if not self.buckets:
      return length
    buckets = tf.constant(self.buckets, tf.int32)
    i = tf.searchsorted(buckets, tf.reshape(length, [1]), side="left")[0]
    return tf.where(i < len(self.buckets), tf.gather(buckets, tf.minimum(i, len(self.buckets) - 1)), length)

  def __call__(self, length, seed):
    del seed
    length = tf.cast(length, tf.int32)
    if not self.buckets:
      return tf.range(length), tf.ones([length], tf.float32)
    return _pad(tf.range(length), length, self.bucket_length(length))
