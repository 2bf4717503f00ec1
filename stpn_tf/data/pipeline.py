"""tf.data input pipelines that stream TFRecord shards (never the whole dataset in memory).

Training batch (dict):  <stream> [B, N, D] float32 for each requested stream, mask [B, N] float32 (1 = real
segment, 0 = padding), labels [B, C] float32 multi-hot, video_id [B] string.
Evaluation batch: the same over all segments of each video (N = longest video of the batch), or over the segments a
test-time sampler picks (`make_eval_dataset.sampler`, e.g. STPN's 400 uniform segments), plus duration [B],
num_segments [B] (the video's length T), num_positions [B] (real positions on the evaluated time axis: T, or the
sampler's count), segments [B, S, 2] and segment_labels [B, S] (padded with -1).
"""

import dataclasses
import random
from typing import Optional, Sequence, Union

from absl import logging
import gin
import tensorflow as tf

from stpn_tf.data import sampling
from stpn_tf.data import schema

AUTOTUNE = tf.data.AUTOTUNE
_HASH_BUCKETS = 1_000_000


@dataclasses.dataclass(frozen=True)
class Holdout:
  """A validation set carved out of a split: the videos whose seeded hash of the id falls below `fraction`.

  Membership depends only on (video id, seed), so it is the same in every process, on every worker and in every
  pass, needs no list of ids, and a new seed draws a new validation set. The held-out share is `fraction` in
  expectation (a keyed hash, not an exact count): with 200 videos and 0.1 it is 20 +- 4.
  """
  fraction: float
  seed: int = 0

  def __post_init__(self):
    if not 0.0 <= self.fraction < 1.0:
      raise ValueError(f"validation fraction must be in [0, 1), got {self.fraction}")

  def is_held_out(self, video_id: tf.Tensor) -> tf.Tensor:
    """[] bool: whether the video (id [] string) belongs to the validation set."""
    bucket = tf.strings.to_hash_bucket_strong(video_id, _HASH_BUCKETS, key=[int(self.seed), 0x57A9])
    return bucket < int(round(self.fraction * _HASH_BUCKETS))


def _apply_holdout(records, holdout: Optional[Holdout], keep_held_out: bool, video_id=None):
  """Keeps the held-out videos (keep_held_out) or the others; (filename, record) elements. `video_id` maps an
  element's second part to its id (default: parse it from the serialized record)."""
  if holdout is None or (holdout.fraction == 0.0 and not keep_held_out):
    return records
  video_id = video_id or schema.video_id_fn()

  def _keep(filename, record):
    del filename
    held_out = holdout.is_held_out(video_id(record))
    return held_out if keep_held_out else tf.logical_not(held_out)

  return records.filter(_keep)


def _records(data_dir: str, split: str, *, shuffle_files: bool, seed: int, input_context, deterministic: bool,
             cycle_length: int = 4, read_file=None):
  """(filename, serialized record) pairs from a split's shards, sharded across input pipelines.

  read_file: filename [] string -> a dataset of (filename, element) pairs in file order; default: the file's
  serialized records. The decoded-split cache passes one that yields each record's index in the in-memory table
  instead, so that both give the same order (same file shuffle, interleave and sharding).
  """
  manifest = schema.read_manifest(data_dir)
  paths = manifest.shard_paths(data_dir, split)
  if not paths:
    raise schema.DataFormatError(f"{data_dir}: split {split!r} has no shards (no videos)")
  files = tf.data.Dataset.from_tensor_slices(paths)
  record_shard = None
  if input_context is not None and input_context.num_input_pipelines > 1:
    # Each worker reads its own share: whole files when there are enough of them, else every k-th record.
    if len(paths) >= input_context.num_input_pipelines:
      files = files.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    else:
      record_shard = (input_context.num_input_pipelines, input_context.input_pipeline_id)
  if shuffle_files:
    files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
  read_file = read_file or (lambda f: tf.data.TFRecordDataset(f).map(lambda r: (f, r)))
  records = files.interleave(
      read_file,
      cycle_length=min(cycle_length, len(paths)), num_parallel_calls=AUTOTUNE, deterministic=deterministic)
  if record_shard is not None:
    records = records.shard(*record_shard)
  return manifest, records


def _check_compatible(data_dirs, streams):
  """Datasets mixed into one training stream must share the class list and the feature dimensions."""
  manifests = [schema.read_manifest(d) for d in data_dirs]
  for d, m in zip(data_dirs[1:], manifests[1:]):
    if m.class_names != manifests[0].class_names:
      raise schema.DataFormatError(f"{d} and {data_dirs[0]} have different class lists; they cannot be mixed")
    for s in streams:
      if m.feature_dims.get(s) != manifests[0].feature_dims.get(s):
        raise schema.DataFormatError(f"{d} and {data_dirs[0]} have different {s!r} feature dimensions")


@gin.configurable(denylist=["data_dir", "input_context"])
def make_train_dataset(data_dir: Union[str, Sequence[str]],
                       split: str = "train",
                       batch_size: int = 32,
                       sampler=None,
                       streams: Sequence[str] = schema.STREAMS,
                       shuffle_buffer: int = 256,
                       seed: Optional[int] = None,
                       deterministic: bool = False,
                       repeat: bool = True,
                       validate: bool = True,
                       mixing_weights: Optional[Sequence[float]] = None,
                       holdout: Optional[Holdout] = None,
                       input_context: Optional[tf.distribute.InputContext] = None,
                       cache_decoded: bool = False,
                       cache_budget_mb: Optional[float] = None) -> tf.data.Dataset:
  """Shuffled, repeated, sampled and batched training videos.

  Args:
    data_dir: dataset directory (schema.MANIFEST_NAME inside), or several with the same class list, mixed into
      one stream (e.g. Nguyen et al. 2019's "Ours + MV": extra weakly-tagged videos added to training).
    split: split name in the manifest.
    batch_size: global batch size; with an input_context each replica gets its per-replica share.
    sampler: a sampling strategy from stpn_tf.data.sampling (default: STPN's UniformPerturbedSampler(400)).
    streams: which feature streams to parse; unparsed streams cost nothing.
    shuffle_buffer: number of serialized videos held for shuffling.
    seed: makes file order, shuffling and sampling reproducible (with deterministic=True, fully).
    deterministic: keep element order fixed despite parallel reads.
    repeat: repeat forever (training) or one pass.
    validate: check every record (dimension, NaN/Inf, length, labels) and fail naming file and video.
    mixing_weights: with several data_dirs, the probability of drawing from each (default: proportional to
      their number of videos, i.e. as if they were one dataset).
    holdout: videos of the first data_dir's split set aside for validation (never trained on).
    input_context: from tf.distribute; each input pipeline then reads its own share of the data.
    cache_decoded: decode (parse and validate) the split once into memory (`DecodedSplit`), so that every epoch
      only samples and pads; the batches are identical to those without the cache for the same seed. Falls back
      to streaming, with a log line, when the split would not fit in cache_budget_mb.
    cache_budget_mb: memory the decoded split may take (default: a quarter of the machine's available memory).

  Returns:
    A tf.data.Dataset of dicts as described in the module docstring.
  """
  sampler = sampler or sampling.UniformPerturbedSampler()
  if seed is None:
    seed = random.randrange(2**31)
  data_dirs = [data_dir] if isinstance(data_dir, str) else list(data_dir)
  _check_compatible(data_dirs, streams)
  videos = [_sampled_videos(d, split, sampler, tuple(streams), shuffle_buffer, seed + i, deterministic, repeat,
                            validate, input_context, holdout if i == 0 else None,
                            DecodedSplit.load(d, split, tuple(streams), validate, cache_budget_mb)
                            if cache_decoded else None) for i, d in enumerate(data_dirs)]
  if len(videos) == 1:
    ds = videos[0]
  else:
    if mixing_weights is None:
      counts = [schema.read_manifest(d).splits[split]["num_videos"] for d in data_dirs]
      mixing_weights = [c / sum(counts) for c in counts]
    ds = tf.data.Dataset.sample_from_datasets(videos, weights=list(mixing_weights), seed=seed,
                                              stop_on_empty_dataset=False)
  per_replica = input_context.get_per_replica_batch_size(batch_size) if input_context else batch_size
  if sampler.output_length is None:
    ds = ds.padded_batch(per_replica, drop_remainder=repeat)
  else:
    ds = ds.batch(per_replica, drop_remainder=repeat)
  options = tf.data.Options()
  options.deterministic = deterministic
  return ds.with_options(options).prefetch(AUTOTUNE)


def _sampled_videos(data_dir, split, sampler, streams, shuffle_buffer, seed, deterministic, repeat, validate,
                    input_context, holdout, decoded=None):
  """One dataset's shuffled stream of sampled (unbatched) videos.

  With `decoded` (a DecodedSplit) the elements that are shuffled and repeated are indices into the in-memory
  table instead of serialized records, produced by the same file shuffle, interleave, sharding and shuffle
  buffer (so in the same order), and `_sample` gathers the sampled rows from the table instead of parsing.
  """
  if decoded is not None:
    _, records = _records(data_dir, split, shuffle_files=True, seed=seed, input_context=input_context,
                          deterministic=deterministic, read_file=decoded.read_file)
    records = _apply_holdout(records, holdout, keep_held_out=False, video_id=decoded.video_id)
    parse = decoded.lookup
  else:
    manifest, records = _records(data_dir, split, shuffle_files=True, seed=seed, input_context=input_context,
                                 deterministic=deterministic)
    records = _apply_holdout(records, holdout, keep_held_out=False)
    parse = schema.parse_fn(manifest, streams, validate=validate)
  if shuffle_buffer > 1:
    records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
  if repeat:
    records = records.repeat()
  # One independent stateless seed per element keeps sampling reproducible under parallel map.
  seeds = tf.data.Dataset.random(seed=seed).batch(2)

  def _sample(element, element_seed):
    filename, record = element
    video = parse(filename, record)
    indices, mask = sampler(video["num_segments"], element_seed)
    # Padded positions get zero rows, so nothing downstream can read a real segment through the padding.
    if decoded is not None:   # rows of the video inside the table's concatenated [sum T, D] features
      rows = video["first_row"] + tf.cast(indices, tf.int64)
      out = {s: tf.gather(decoded.features[s], rows) * mask[:, None] for s in streams}
    else:
      out = {s: tf.gather(video[s], indices) * mask[:, None] for s in streams}
    out["mask"] = mask
    out["labels"] = video["labels"]
    out["video_id"] = video["video_id"]
    return out

  return tf.data.Dataset.zip((records, seeds)).map(_sample, num_parallel_calls=AUTOTUNE,
                                                   deterministic=deterministic)


class DecodedSplit:
  """A split's videos decoded once (parsed and validated) and held in memory: the decode-once training cache.

  Per stream, every video's [T, D] rows are concatenated into one [sum T, D] float32 tensor, with each video's
  first row, length, labels and id beside it; `read_file` lists a shard's videos as indices into that table (in
  file order), so the usual file shuffle, interleave, sharding and shuffle buffer order indices instead of
  serialized records, and sampling gathers only the sampled rows. An epoch then costs no parsing.

  Not tf.data's `Dataset.cache()`: that replays the first epoch's order, where a table gives the same per-epoch
  file reshuffling as streaming and so exactly the same batches for a seed (and its shuffle buffer holds small
  indices, not whole videos).
  """

  def __init__(self, paths, counts, features, first_row, num_segments, labels, video_ids):
    self.paths = list(paths)
    self.features = {s: tf.convert_to_tensor(v) for s, v in features.items()}
    self.first_row = tf.convert_to_tensor(first_row, tf.int64)
    self.num_segments = tf.convert_to_tensor(num_segments, tf.int32)
    self.labels = tf.convert_to_tensor(labels, tf.float32)
    self.video_ids = tf.convert_to_tensor(video_ids, tf.string)
    starts = [0]
    for c in counts[:-1]:
      starts.append(starts[-1] + c)
    self._file_start = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(self.paths), tf.constant(starts, tf.int64)), -1)
    self._file_count = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(self.paths), tf.constant(list(counts), tf.int64)), -1)

  @property
  def nbytes(self) -> int:
    return sum(int(v.shape[0]) * int(v.shape[1]) * 4 for v in self.features.values())

  @classmethod
  def load(cls, data_dir: str, split: str, streams: Sequence[str], validate: bool = True,
           budget_mb: Optional[float] = None) -> Optional["DecodedSplit"]:
    """Decodes the split, or returns None (streaming then) with a log line when it would exceed budget_mb.

    The size is estimated before decoding from the shards' sizes on disk (the features are stored as raw
    float32, so the decoded streams take at most about that much), and checked again while decoding.
    """
    import numpy as np  # pylint: disable=import-outside-toplevel
    manifest = schema.read_manifest(data_dir)
    paths = manifest.shard_paths(data_dir, split)
    if not paths:
      raise schema.DataFormatError(f"{data_dir}: split {split!r} has no shards (no videos)")
    budget = (budget_mb * 2**20) if budget_mb is not None else _available_memory_bytes() / 4
    on_disk = sum(tf.io.gfile.stat(p).length for p in paths)
    share = sum(manifest.feature_dims[s] for s in streams) / max(sum(manifest.feature_dims.values()), 1)
    estimate = on_disk * share
    if estimate > budget:
      logging.info("%s %s: not caching the decoded split (~%.0f MB of features, budget %.0f MB); streaming it",
                   data_dir, split, estimate / 2**20, budget / 2**20)
      return None
    parse = schema.parse_fn(manifest, streams, validate=validate)
    rows = {s: [] for s in streams}
    counts, lengths, labels, ids, total = [], [], [], [], 0
    for path in paths:   # file order; every record parsed (and validated) once, in parallel
      ds = tf.data.TFRecordDataset(path).map(lambda r, p=path: parse(tf.constant(p), r), num_parallel_calls=AUTOTUNE)
      count = 0
      for video in ds:
        for s in streams:
          rows[s].append(video[s].numpy())
          total += rows[s][-1].nbytes
        lengths.append(int(video["num_segments"]))
        labels.append(video["labels"].numpy())
        ids.append(video["video_id"].numpy())
        count += 1
        if total > budget:
          logging.info("%s %s: not caching the decoded split (over the budget of %.0f MB while decoding); "
                       "streaming it", data_dir, split, budget / 2**20)
          return None
      counts.append(count)
    first_row = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    features = {s: np.concatenate(rows[s], axis=0) for s in streams}
    del rows
    split_cache = cls(paths, counts, features, first_row, lengths, np.stack(labels), ids)
    logging.info("%s %s: decoded %d videos once into memory (%.0f MB)", data_dir, split, len(ids),
                 split_cache.nbytes / 2**20)
    return split_cache

  def read_file(self, filename):
    """A shard's videos as (filename, table index) pairs, in file order (the `_records` read_file hook)."""
    start = self._file_start.lookup(filename)
    return tf.data.Dataset.range(start, start + self._file_count.lookup(filename)).map(lambda i: (filename, i))

  def video_id(self, index):
    return tf.gather(self.video_ids, index)

  def lookup(self, filename, index):
    """What `_sample` reads of a video (the parse function's role): its length, labels, id and first row."""
    del filename
    return {"num_segments": tf.gather(self.num_segments, index), "labels": tf.gather(self.labels, index),
            "video_id": tf.gather(self.video_ids, index), "first_row": tf.gather(self.first_row, index)}


def _available_memory_bytes() -> float:
  """MemAvailable of /proc/meminfo (Linux), else 4 GiB."""
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return float(line.split()[1]) * 1024
  except OSError:
    pass
  return 4.0 * 2**30


@gin.configurable(denylist=["data_dir", "split", "input_context"])
def make_eval_dataset(data_dir: str,
                      split: str = "test",
                      batch_size: int = 1,
                      streams: Sequence[str] = schema.STREAMS,
                      validate: bool = True,
                      holdout: Optional[Holdout] = None,
                      sampler=None,
                      input_context: Optional[tf.distribute.InputContext] = None) -> tf.data.Dataset:
  """Every video of a split, in file order, one pass; padded batches with a mask.

  Args:
    data_dir, split, batch_size, streams, validate: as make_train_dataset.
    holdout: only the split's held-out (validation) videos.
    sampler: None = all segments of each video (default); or a sampler of stpn_tf.data.sampling, called with a
      fixed seed, e.g. `make_eval_dataset.sampler = @test/UniformPerturbedSampler()` with
      `test/UniformPerturbedSampler.perturb = False` for STPN's "400 segments at uniform interval ... in testing"
      (section 4.2). Position j of N uniform positions covers segments [j T / N, (j + 1) T / N) of the video, so
      inference maps it back to seconds at `num_positions / num_segments` times the feature rate
      (inference.predict_videos); shorter videos are padded and keep their own rate. Only uniform samplers keep
      that mapping exact: a random window or subset (RandomWindowSampler, RandomSubsetSampler) is refused.
    input_context: from tf.distribute.
  """
  if sampler is not None and not isinstance(sampler, sampling.UniformPerturbedSampler):
    raise ValueError(f"make_eval_dataset.sampler must be None (all segments) or a UniformPerturbedSampler, got "
                     f"{type(sampler).__name__}: its positions cannot be mapped back to seconds uniformly")
  manifest, records = _records(data_dir, split, shuffle_files=False, seed=0, input_context=input_context,
                               deterministic=True, cycle_length=1)
  records = _apply_holdout(records, holdout, keep_held_out=True)
  parse = schema.parse_fn(manifest, streams, validate=validate)
  streams = tuple(streams)

  def _full(filename, record):
    video = parse(filename, record)
    if sampler is None:
      out = {s: video[s] for s in streams}
      out["mask"] = tf.ones([video["num_segments"]], tf.float32)
      out["num_positions"] = tf.cast(video["num_segments"], tf.int32)
    else:
      indices, mask = sampler(video["num_segments"], tf.constant([0, 0], tf.int64))
      out = {s: tf.gather(video[s], indices) * mask[:, None] for s in streams}
      out["mask"] = mask
      out["num_positions"] = tf.cast(tf.reduce_sum(mask), tf.int32)
    for key in ("labels", "video_id", "duration", "num_segments", "segments", "segment_labels"):
      out[key] = video[key]
    return out

  ds = records.map(_full, num_parallel_calls=AUTOTUNE, deterministic=True)
  padding = {s: 0.0 for s in streams}
  padding.update(mask=0.0, labels=0.0, video_id="", duration=0.0, num_segments=0, num_positions=0, segments=-1.0,
                 segment_labels=-1)
  return ds.padded_batch(batch_size, padding_values=padding).prefetch(AUTOTUNE)
