"""The one module that owns the on-disk feature format: TFRecord SequenceExamples plus a JSON manifest.

Layout of a dataset directory:

    DIR/manifest.json                 written last; its presence means "complete"
    DIR/<split>-<index:05d>.tfrecord  shards, one tf.train.SequenceExample per video

Each SequenceExample holds
  context:
    video_id        bytes
    labels          int64 list   class indices present in the video (multi-label, may be empty)
    duration        float        seconds
    num_segments    int64        T, the number of feature rows of each stream
    segment_start   float list   ground-truth instances, seconds (empty when unknown)
    segment_end     float list
    segment_label   int64 list
  feature lists:
    rgb, flow       T entries each, every entry one bytes value: a float32 row of D values, raw little-endian
                    bytes (not float_list), so that parsing is close to a memory copy.

Nothing outside this module spells a feature key: readers call `parse_fn` / `read_videos`, writers call
`DatasetWriter`.
"""

import dataclasses
import json
import os
import uuid
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import tensorflow as tf

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
STREAMS = ("rgb", "flow")
SHARD_SUFFIX = ".tfrecord"
# Features per second of the common THUMOS14 I3D release: 25 fps video, one feature per 16 frames.
THUMOS14_FEATURE_RATE = 25.0 / 16.0

_VIDEO_ID = "video_id"
_LABELS = "labels"
_DURATION = "duration"
_NUM_SEGMENTS = "num_segments"
_SEG_START = "segment_start"
_SEG_END = "segment_end"
_SEG_LABEL = "segment_label"


class DataFormatError(ValueError):
  """Raised for a dataset, record or video that violates the format; the message names it."""


@dataclasses.dataclass
class Video:
  """One video in memory: features, video-level labels and (optional) ground-truth instances."""
  video_id: str
  labels: np.ndarray          # [L] int, class indices present in the video
  duration: float             # seconds
  rgb: np.ndarray             # [T, D_rgb] float32
  flow: np.ndarray            # [T, D_flow] float32
  segments: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2), np.float32))  # [N, 2] s
  segment_labels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0,), np.int64))  # [N]

  @property
  def num_segments(self) -> int:
    return int(self.rgb.shape[0])


@dataclasses.dataclass
class Manifest:
  """The dataset-level facts every reader needs."""
  class_names: List[str]
  feature_rate: float                      # features per second
  feature_dims: Dict[str, int]             # stream -> D
  splits: Dict[str, Dict]                  # split -> {"num_videos": n, "shards": [file names]}
  format_version: int = FORMAT_VERSION
  extra: Dict = dataclasses.field(default_factory=dict)  # free-form provenance (generator, converter, ...)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def shard_paths(self, data_dir: str, split: str) -> List[str]:
    if split not in self.splits:
      raise DataFormatError(
          f"{os.path.join(data_dir, MANIFEST_NAME)}: no split {split!r}; splits are {sorted(self.splits)}")
    return [os.path.join(data_dir, name) for name in self.splits[split]["shards"]]


def validate_video(video: Video, num_classes: int, feature_dims: Dict[str, int], source: str = "") -> None:
  """Checks one in-memory video; raises DataFormatError naming the source, the video and the problem."""
  where = f"{source}: video {video.video_id!r}" if source else f"video {video.video_id!r}"
  if not video.video_id:
    raise DataFormatError(f"{source}: a video has an empty id")
  for stream in STREAMS:
    x = getattr(video, stream)
    if x.ndim != 2 or x.shape[1] != feature_dims[stream]:
      raise DataFormatError(
          f"{where}: {stream} features have shape {x.shape}, expected [T, {feature_dims[stream]}]")
    if x.shape[0] == 0:
      raise DataFormatError(f"{where}: zero-length video (no {stream} feature rows)")
    if not np.all(np.isfinite(x)):
      raise DataFormatError(f"{where}: {stream} features contain NaN or Inf")
  if video.rgb.shape[0] != video.flow.shape[0]:
    raise DataFormatError(
        f"{where}: rgb has {video.rgb.shape[0]} rows but flow has {video.flow.shape[0]}")
  labels = np.asarray(video.labels)
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise DataFormatError(f"{where}: class index out of range [0, {num_classes}): {labels.tolist()}")
  seg_labels = np.asarray(video.segment_labels)
  if seg_labels.size and (seg_labels.min() < 0 or seg_labels.max() >= num_classes):
    raise DataFormatError(f"{where}: segment class index out of range [0, {num_classes})")
  segments = np.asarray(video.segments, np.float64).reshape(-1, 2)
  if segments.shape[0] != seg_labels.shape[0]:
    raise DataFormatError(f"{where}: {segments.shape[0]} segments but {seg_labels.shape[0]} segment labels")
  if not np.all(np.isfinite(segments)) or np.any(segments[:, 1] < segments[:, 0]):
    raise DataFormatError(f"{where}: a ground-truth segment is not finite or ends before it starts")
  if not np.isfinite(video.duration) or video.duration <= 0:
    raise DataFormatError(f"{where}: duration {video.duration} is not a positive number")


def serialize_video(video: Video) -> bytes:
  """Encodes one video as a serialized tf.train.SequenceExample (call validate_video first).

  The context goes through protobuf; the feature lists, which are nearly all of the bytes, are written straight in
  the protobuf wire format with NumPy (every row has the same header), which is several times faster than building
  one Feature message per row and parses to the identical message (tested against the protobuf encoder).
  """
  lists = b"".join(_map_entry(stream, _feature_list_bytes(getattr(video, stream))) for stream in STREAMS)
  return _field(1, _context_bytes(video)) + _field(2, lists)


def _context_bytes(video: Video) -> bytes:
  segments = np.asarray(video.segments, np.float32).reshape(-1, 2)
  return tf.train.Features(feature={
      _VIDEO_ID: _bytes([video.video_id.encode("utf-8")]),
      _LABELS: _int64(np.asarray(video.labels, np.int64)),
      _DURATION: _float([float(video.duration)]),
      _NUM_SEGMENTS: _int64([video.num_segments]),
      _SEG_START: _float(segments[:, 0]),
      _SEG_END: _float(segments[:, 1]),
      _SEG_LABEL: _int64(np.asarray(video.segment_labels, np.int64)),
  }).SerializeToString()


def serialize_video_reference(video: Video) -> bytes:
  """The same message built with protobuf objects only (slow; the reference the fast encoder is tested against)."""
  message = tf.train.SequenceExample()
  message.context.ParseFromString(_context_bytes(video))
  for stream in STREAMS:
    rows = np.ascontiguousarray(getattr(video, stream), dtype="<f4")
    message.feature_lists.feature_list[stream].CopyFrom(
        tf.train.FeatureList(feature=[_bytes([row.tobytes()]) for row in rows]))
  return message.SerializeToString()


def _varint(value: int) -> bytes:
  out = bytearray()
  while True:
    byte = value & 0x7F
    value >>= 7
    if value:
      out.append(byte | 0x80)
    else:
      out.append(byte)
      return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
  """A length-delimited protobuf field (wire type 2)."""
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _map_entry(key: str, value: bytes) -> bytes:
  """One entry of FeatureLists.feature_list (map<string, FeatureList>, field 1): {1: key, 2: value}."""
  return _field(1, _field(1, key.encode("utf-8")) + _field(2, value))


def _feature_list_bytes(features: np.ndarray) -> bytes:
  """FeatureList {repeated Feature feature = 1}, each Feature {bytes_list = 1 {value = 1: one row's bytes}}."""
  rows = np.ascontiguousarray(features, dtype="<f4")
  num_rows, dim = rows.shape
  row_len = 4 * dim
  bytes_list = _varint(1 << 3 | 2) + _varint(row_len)                     # BytesList.value header
  feature = _varint(1 << 3 | 2) + _varint(len(bytes_list) + row_len)      # Feature.bytes_list header
  entry = _varint(1 << 3 | 2) + _varint(len(feature) + len(bytes_list) + row_len)  # FeatureList.feature header
  header = np.frombuffer(entry + feature + bytes_list, np.uint8)
  out = np.empty((num_rows, header.size + row_len), np.uint8)             # [T, header + row bytes]
  out[:, :header.size] = header
  out[:, header.size:] = rows.view(np.uint8).reshape(num_rows, row_len)
  return out.tobytes()


def _bytes(values):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int64(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _float(values):
  return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


# ----------------------------------------------------------------------------------------------- writing


class DatasetWriter:
  """Writes a dataset directory atomically: shards under temporary names, renamed when closed, manifest last.

  Use as a context manager. If the block raises, temporary shards are removed and no manifest is written,
  so an interrupted write never leaves a directory that a reader accepts as complete.
  """

  def __init__(self, output_dir: str, class_names: Sequence[str], feature_rate: float,
               feature_dims: Optional[Dict[str, int]] = None, videos_per_shard: int = 64,
               overwrite: bool = False, extra: Optional[Dict] = None):
    self._dir = output_dir
    if tf.io.gfile.exists(os.path.join(output_dir, MANIFEST_NAME)) and not overwrite:
      raise FileExistsError(
          f"{output_dir} already holds a dataset (manifest.json); pass overwrite=True (--overwrite) to replace it")
    if not class_names or len(set(class_names)) != len(class_names):
      raise DataFormatError(f"{output_dir}: class names must be non-empty and unique")
    if not feature_rate > 0:
      raise DataFormatError(f"{output_dir}: feature rate must be positive, got {feature_rate}")
    tf.io.gfile.makedirs(output_dir)
    if overwrite:
      self._remove_old_dataset()
    self._class_names = list(class_names)
    self._rate = float(feature_rate)
    self._dims = dict(feature_dims or {"rgb": 1024, "flow": 1024})
    self._per_shard = int(videos_per_shard)
    self._extra = dict(extra or {})
    self._token = uuid.uuid4().hex[:8]
    self._splits: Dict[str, Dict] = {}
    self._writers: Dict[str, tf.io.TFRecordWriter] = {}
    self._pending: List[tuple] = []   # (temporary path, final path)
    self._seen_ids = set()

  def _remove_old_dataset(self):
    manifest = os.path.join(self._dir, MANIFEST_NAME)
    if tf.io.gfile.exists(manifest):
      tf.io.gfile.remove(manifest)   # first, so the directory stops looking complete
    for name in tf.io.gfile.listdir(self._dir):
      if name.endswith(SHARD_SUFFIX):
        tf.io.gfile.remove(os.path.join(self._dir, name))

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      self.close()
    else:
      self.abort()
    return False

  def write(self, split: str, video: Video, source: str = "") -> None:
    """Validates and appends one video to a split; raises DataFormatError on bad input."""
    validate_video(video, len(self._class_names), self._dims, source or self._dir)
    key = (split, video.video_id)
    if key in self._seen_ids:
      raise DataFormatError(f"{source or self._dir}: duplicate video id {video.video_id!r} in split {split!r}")
    self._seen_ids.add(key)
    info = self._splits.setdefault(split, {"num_videos": 0, "shards": []})
    if info["num_videos"] % self._per_shard == 0:
      self._open_shard(split, len(info["shards"]))
    self._writers[split].write(serialize_video(video))
    info["num_videos"] += 1

  def _open_shard(self, split: str, index: int):
    if split in self._writers:
      self._writers[split].close()
    name = f"{split}-{index:05d}{SHARD_SUFFIX}"
    tmp = os.path.join(self._dir, f".tmp-{self._token}-{name}")
    self._pending.append((tmp, os.path.join(self._dir, name)))
    self._splits[split]["shards"].append(name)
    self._writers[split] = tf.io.TFRecordWriter(tmp)

  def close(self) -> Manifest:
    """Finishes every shard, renames them into place, then writes the manifest (last, atomically)."""
    for writer in self._writers.values():
      writer.close()
    self._writers = {}
    for tmp, final in self._pending:
      tf.io.gfile.rename(tmp, final, overwrite=True)
    self._pending = []
    manifest = Manifest(class_names=self._class_names, feature_rate=self._rate, feature_dims=self._dims,
                        splits=self._splits, extra=self._extra)
    write_manifest(self._dir, manifest)
    return manifest

  def abort(self) -> None:
    for writer in self._writers.values():
      writer.close()
    self._writers = {}
    for tmp, _ in self._pending:
      if tf.io.gfile.exists(tmp):
        tf.io.gfile.remove(tmp)
    self._pending = []


def write_manifest(data_dir: str, manifest: Manifest) -> None:
  payload = dataclasses.asdict(manifest)
  tmp = os.path.join(data_dir, f".tmp-{uuid.uuid4().hex[:8]}-{MANIFEST_NAME}")
  with tf.io.gfile.GFile(tmp, "w") as f:
    json.dump(payload, f, indent=1)
  tf.io.gfile.rename(tmp, os.path.join(data_dir, MANIFEST_NAME), overwrite=True)


def write_dataset(output_dir: str, splits: Dict[str, Iterable[Video]], class_names: Sequence[str],
                  feature_rate: float, **kwargs) -> Manifest:
  """Writes whole splits at once (each an iterable of Video, consumed lazily)."""
  with DatasetWriter(output_dir, class_names, feature_rate, **kwargs) as writer:
    for split, videos in splits.items():
      for video in videos:
        writer.write(split, video)
  return read_manifest(output_dir)


# ----------------------------------------------------------------------------------------------- reading


def read_manifest(data_dir: str) -> Manifest:
  """Loads DIR/manifest.json; a missing or malformed manifest is a clear DataFormatError."""
  path = os.path.join(data_dir, MANIFEST_NAME)
  if not tf.io.gfile.isdir(data_dir):
    raise DataFormatError(f"data directory {data_dir} does not exist")
  if not tf.io.gfile.exists(path):
    raise DataFormatError(
        f"{data_dir} is not a complete dataset: {MANIFEST_NAME} is missing (empty directory, or an interrupted "
        "write). Create one with tools/make_synthetic_dataset.py or tools/convert_features.py")
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      payload = json.load(f)
    manifest = Manifest(**payload)
  except (ValueError, TypeError) as e:
    raise DataFormatError(f"{path}: malformed manifest ({e})") from e
  if manifest.format_version != FORMAT_VERSION:
    raise DataFormatError(f"{path}: format version {manifest.format_version}, this code reads {FORMAT_VERSION}")
  for split in manifest.splits:
    for shard in manifest.shard_paths(data_dir, split):
      if not tf.io.gfile.exists(shard):
        raise DataFormatError(f"{path}: shard {shard} listed in the manifest is missing")
  return manifest


def video_id_fn():
  """Returns a function serialized record -> video_id [] string that parses nothing else (cheap)."""
  spec = {_VIDEO_ID: tf.io.FixedLenFeature([], tf.string, default_value="")}

  def _video_id(serialized):
    context, _ = tf.io.parse_single_sequence_example(serialized, context_features=spec)
    return context[_VIDEO_ID]

  return _video_id


def parse_fn(manifest: Manifest, streams: Sequence[str] = STREAMS, validate: bool = True):
  """Returns a tf.data map function (filename, serialized) -> dict of tensors for one video.

  Output: video_id [] string, labels [C] float32 multi-hot, duration [] float32, num_segments [] int32,
  segments [N, 2] float32, segment_labels [N] int32, and one [T, D] float32 tensor per requested stream.

  With validate=True every record is checked in the graph; a bad one stops the pipeline with an
  InvalidArgumentError whose message names the file, the video id and the problem.
  """
  num_classes = manifest.num_classes
  dims = {s: int(manifest.feature_dims[s]) for s in streams}
  context_spec = {
      _VIDEO_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
      _LABELS: tf.io.VarLenFeature(tf.int64),
      _DURATION: tf.io.FixedLenFeature([], tf.float32, default_value=-1.0),
      _NUM_SEGMENTS: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
      _SEG_START: tf.io.VarLenFeature(tf.float32),
      _SEG_END: tf.io.VarLenFeature(tf.float32),
      _SEG_LABEL: tf.io.VarLenFeature(tf.int64),
  }
  sequence_spec = {s: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True) for s in streams}

  def _parse(filename, serialized):
    context, sequences = tf.io.parse_single_sequence_example(
        serialized, context_features=context_spec, sequence_features=sequence_spec)
    video_id = context[_VIDEO_ID]
    labels = tf.sparse.to_dense(context[_LABELS])
    seg_labels = tf.sparse.to_dense(context[_SEG_LABEL])
    starts = tf.sparse.to_dense(context[_SEG_START])
    ends = tf.sparse.to_dense(context[_SEG_END])
    num_segments = context[_NUM_SEGMENTS]
    where = tf.strings.join([filename, ": video '", video_id, "': "])
    checks = []
    if validate:
      def check(cond, problem):
        checks.append(tf.debugging.Assert(cond, [tf.strings.join([where, problem])], summarize=1))
      check(tf.strings.length(video_id) > 0, "missing field video_id")
      check(context[_DURATION] >= 0, "missing field duration")
      check(num_segments >= 0, "missing field num_segments")
      check(num_segments != 0, "zero-length video (num_segments = 0)")
      check(tf.reduce_all((labels >= 0) & (labels < num_classes)),
            f"class index out of range [0, {num_classes})")
      check(tf.reduce_all((seg_labels >= 0) & (seg_labels < num_classes)),
            f"segment class index out of range [0, {num_classes})")
      check(tf.size(starts) == tf.size(seg_labels), "segment fields have different lengths")
      check(tf.size(ends) == tf.size(seg_labels), "segment fields have different lengths")
      for s in streams:
        rows = sequences[s]
        check(tf.cast(tf.size(rows), tf.int64) == num_segments,
              f"feature list '{s}' is missing or has a row count different from num_segments")
        check(tf.reduce_all(tf.strings.length(rows) == 4 * dims[s]),
              f"feature list '{s}' rows are not {dims[s]} float32 values (wrong feature dimension)")
    out = {}
    with tf.control_dependencies(checks):
      for s in streams:
        x = tf.reshape(tf.io.decode_raw(sequences[s], tf.float32, little_endian=True), [-1, dims[s]])
        if validate:
          finite = tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(x)),
                                       [tf.strings.join([where, f"'{s}' features contain NaN or Inf"])])
          with tf.control_dependencies([finite]):
            x = tf.identity(x)
        out[s] = x
      # Every output waits for the checks, so no op downstream (e.g. tf.ones([num_segments])) can fail first
      # with a message that does not name the file and video.
      out["video_id"] = tf.identity(video_id)
      # reduce_max over an empty label list gives -inf rows; clamp to a proper zero vector.
      out["labels"] = tf.maximum(tf.reduce_max(tf.one_hot(labels, num_classes, dtype=tf.float32), axis=0), 0.0)
      out["duration"] = tf.identity(context[_DURATION])
      out["num_segments"] = tf.cast(num_segments, tf.int32)
      out["segments"] = tf.stack([starts, ends], axis=-1)
      out["segment_labels"] = tf.cast(seg_labels, tf.int32)
    return out

  return _parse


def read_videos(data_dir: str, split: str, streams: Sequence[str] = STREAMS) -> Iterator[Video]:
  """Reads a split back as Video objects, in file order (for tools, tests and evaluation)."""
  manifest = read_manifest(data_dir)
  parse = parse_fn(manifest, streams)
  for path in manifest.shard_paths(data_dir, split):
    for record in tf.data.TFRecordDataset(path):
      v = parse(tf.constant(path), record)
      labels = np.flatnonzero(v["labels"].numpy() > 0)
      empty = np.zeros((v["num_segments"].numpy(), 0), np.float32)
      yield Video(
          video_id=v["video_id"].numpy().decode("utf-8"), labels=labels, duration=float(v["duration"]),
          rgb=v["rgb"].numpy() if "rgb" in v else empty, flow=v["flow"].numpy() if "flow" in v else empty,
          segments=v["segments"].numpy(), segment_labels=v["segment_labels"].numpy().astype(np.int64))
