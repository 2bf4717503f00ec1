"""Training-time segment sampling strategies (TensorFlow ops, usable inside tf.data).

Each sampler maps (num_segments T, stateless seed [2]) to (indices [N] int32, mask [N] float32). Positions whose
mask is 0 are padding: their index is 0 and every pooling and loss must ignore them. Videos shorter than N are
never stretched or repeated; they are padded (the mask then has exactly T ones).

Samplers are gin-configurable classes so a config chooses one by reference, e.g.
`make_train_dataset.sampler = @UniformPerturbedSampler()`.
"""

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
  """Every segment of the video (Nguyen et al. 2019, section 4.2); batches are padded to the longest video."""

  output_length = None

  def __call__(self, length, seed):
    del seed
    length = tf.cast(length, tf.int32)
    return tf.range(length), tf.ones([length], tf.float32)
