r"""Converters from public I3D feature releases into the project's TFRecord dataset (see `schema`).

Three input formats, one output layout:

* ``wtalc``: the release used by W-TALC, 3C-Net, HAM-Net and many others. One pickled NumPy object array
  ``<Dataset>-I3D-JOINTFeatures.npy`` with a float [T, 2048] array per video (RGB 1024 then flow 1024), in the
  order of ``<Dataset>-Annotations/videoname.npy``; the annotation folder holds ``videoname``, ``subset``,
  ``labels`` (a label per instance), ``labels_all`` (video-level labels), ``segments`` ([start, end] s per
  instance), ``classlist`` and ``duration`` (.npy, strings possibly bytes) plus, for THUMOS14,
  ``Ambiguous_test.txt`` (lines "video start end"). Videos are matched to features by position.
* ``per_video``: ``DIR/rgb/<video>.npy`` and ``DIR/flow/<video>.npy`` ([T, 1024] each) or ``DIR/<video>.npy``
  ([T, 2048], RGB then flow), with an ActivityNet-format ground-truth JSON.
* ``hdf5``: one HDF5 file with a group per video holding ``rgb`` and ``flow`` datasets, or one [T, 2048] dataset
  per video, with an ActivityNet-format ground-truth JSON. Read through tensorflow-io.

Ground-truth JSON (``read_activitynet_json``): ``{"database": {vid: {"subset", "duration"?, "annotations":
[{"label", "segment": [s, e]}]}}}``, numbers possibly strings; the official ActivityNet 1.2 / 1.3 files work as
they are (extra keys are ignored; "testing" videos, which have no labels, are not converted). Video-level labels
are the distinct instance labels; the class list is the sorted set of all labels unless one is given.

Subsets map to splits: THUMOS14 "validation" -> "train", "test" -> "test"; ActivityNet "training" -> "train",
"validation" -> "test" (chosen by whether a "training" subset exists; override with ``subset_map``). Videos of
unmapped subsets are not converted and are counted in the report.

Output (``output_dir``), besides the dataset itself:
  ground_truth.json       evaluation split ("test") in the ActivityNet format, seconds, exactly the instances of
                          the input (duplicates and overlapping classes such as THUMOS14's CliffDiving/Diving
                          kept), for the videos written to the dataset; ``python -m stpn_tf.evaluate
                          --ground_truth=OUT/ground_truth.json``.
  ambiguous.json          only when ambiguous segments are given (THUMOS14 ``Ambiguous_test.txt``): the same
                          layout, every segment with label "Ambiguous", all lines of the input file as given
                          (these are not ground truth; evaluators may ignore detections overlapping them).
  conversion_report.json  status, counts, every problem, skipped video and warning; written on failure too.
Both JSON files and the report are written atomically before the manifest, which comes last: a directory
without manifest.json is never a complete dataset, whatever happened to the conversion. The report says
"complete" only once the manifest is written (before: "running"). A folder holding only a failed conversion's
report (and its temporaries) is replaced by a rerun without --overwrite.

Problems, each reported with the video id (``Problem.kind``):
  duplicate_id, unknown_class, bad_annotation, bad_segment (not finite, or end < start), bad_duration,
  segment_out_of_range (start < -tolerance, or end > max(duration, T / feature_rate) + tolerance),
  missing_features (annotated video without features), missing_annotation (features without annotation),
  unreadable_features, bad_shape (not [T, D] floats with the expected D), zero_length, stream_length_mismatch
  (rgb and flow row counts differ), non_finite (NaN or Inf).
Real releases convert as they are: by default (``strict=False``) a problem that leaves the features usable,
segment_out_of_range (the W-TALC THUMOS14 release has five videos with instances past the end of their features),
is a warning instead and the instance is kept exactly as given, as W-TALC, HAM-Net and the other users of these
releases keep it; zero-length (start == end) and repeated (same label and segment twice) instances are warnings in
every mode. ``strict=True`` (``--strict``) makes segment_out_of_range a problem again.
``on_error="fail"`` raises `schema.DataFormatError` naming the video(s); ``"skip"`` leaves the video out (of the
dataset and of ground_truth.json) and lists it in the report. Problems that make the whole input unusable
(annotation files of different lengths, a feature count different from the annotation count in the positional
wtalc format, an unreadable file) always raise. Warnings never skip a video: video labels that do not cover the
instance labels (THUMOS14 has 21 such videos), a duration far from T / feature_rate, a feature rate far from the
median T / duration, zero-length and repeated instances (ActivityNet 1.2 has 10 and 21), and without ``strict``
segment_out_of_range.

The segment check accepts an end up to max(annotated duration, T / feature_rate) + ``segment_tolerance`` seconds
(default 1 s): the features prove the video is at least T / rate long, and real annotation durations are often a
fraction of a second short (ActivityNet 1.2: up to 0.35 s). ``float("inf")`` disables the check.

File systems: paths go through ``tf.io.gfile`` (local paths, gs://, and with tensorflow-io imported s3://,
hdfs://, az://...); local paths use plain files. HDF5 goes through ``tfio.IOTensor.from_hdf5``, which reads
through the same file systems. The output directory may be remote too, but there JSON files are written as
temporary + rename, which is atomic only where the file system's rename is.

Memory: per_video and hdf5 hold one video at a time (peak ~ the process baseline plus a few copies of the
largest video). The wtalc object array cannot be memory-mapped (pickled objects), so it is loaded whole: peak
~ the file size plus a few copies of the largest video (THUMOS14: ~1.1 GB; each array is released once written).
"""

import collections
import dataclasses
import json
import os
import pickle
import statistics
import time
import uuid
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from stpn_tf.data import hdf5_check
from stpn_tf.data import schema
from stpn_tf.evaluation import io as eval_io

GROUND_TRUTH_NAME = "ground_truth.json"
AMBIGUOUS_NAME = "ambiguous.json"
REPORT_NAME = "conversion_report.json"
AMBIGUOUS_LABEL = "Ambiguous"
EVAL_SPLIT = "test"
THUMOS14_SUBSETS = {"validation": "train", "test": "test"}
ACTIVITYNET_SUBSETS = {"training": "train", "validation": "test"}
DEFAULT_SEGMENT_TOLERANCE_S = 1.0
DEFAULT_STREAM_DIM = 1024
ON_ERROR_CHOICES = ("fail", "skip")
FORMATS = ("wtalc", "per_video", "hdf5")
# How many problems a fail-mode error message lists; the report holds them all.
_MAX_LISTED = 20


# ------------------------------------------------------------------------------------------- data types


@dataclasses.dataclass(frozen=True)
class Problem:
  """One problem of one video (or of one feature file without annotation)."""
  video_id: str
  kind: str
  message: str

  def __str__(self):
    return f"video {self.video_id!r}: {self.kind}: {self.message}"


@dataclasses.dataclass
class VideoAnnotation:
  """Everything the annotation side knows about one video, labels as class names."""
  video_id: str
  subset: str                                  # as written in the input ("validation", "training", ...)
  duration: Optional[float]                    # seconds; None when the input has none
  labels: List[str]                            # video-level labels
  segments: List[Tuple[float, float]]          # [N] (start, end) seconds, as given
  segment_labels: List[str]                    # [N]
  index: int = -1                              # position in the input (the wtalc features are positional)
  problems: List[Problem] = dataclasses.field(default_factory=list)  # found while reading


@dataclasses.dataclass
class Annotations:
  """A whole annotation input: class list, videos in input order, optional ambiguous segments."""
  class_names: List[str]
  videos: List[VideoAnnotation]
  source: str
  ambiguous: Optional[Dict[str, List[List[float]]]] = None   # video -> [[start, end], ...] seconds


@dataclasses.dataclass
class ConversionOptions:
  """Knobs shared by every format (the CLI flags of tools/convert_features.py).

  Attributes:
    on_error: "fail" raises on the first bad video (after listing every annotation problem); "skip" leaves bad
      videos out and reports them.
    overwrite: replace an existing output directory (its dataset, ground truth and report are removed first).
    segment_tolerance: seconds a segment may reach beyond the video (see the module docstring); inf disables.
    stream_dim: feature dimension of each stream (a joint array has 2 * stream_dim columns).
    videos_per_shard: passed to schema.DatasetWriter.
    log_every: progress is logged every this many videos.
    subset_map: input subset -> output split; None picks THUMOS14 or ActivityNet conventions.
    class_names: class list to use instead of the input's (JSON inputs: sorted labels by default).
    strict: treat instances past the video's end (or before 0 s) as problems (the behaviour before issue 18);
      False keeps them as given and reports a warning.
  """
  on_error: str = "fail"
  overwrite: bool = False
  segment_tolerance: float = DEFAULT_SEGMENT_TOLERANCE_S
  stream_dim: int = DEFAULT_STREAM_DIM
  videos_per_shard: int = 64
  log_every: int = 50
  subset_map: Optional[Dict[str, str]] = None
  class_names: Optional[List[str]] = None
  strict: bool = False

  def __post_init__(self):
    if self.on_error not in ON_ERROR_CHOICES:
      raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {self.on_error!r}")
    if not self.segment_tolerance >= 0:
      raise ValueError(f"segment_tolerance must be >= 0 seconds, got {self.segment_tolerance}")
    if self.stream_dim <= 0:
      raise ValueError(f"stream_dim must be positive, got {self.stream_dim}")


@dataclasses.dataclass
class ConversionReport:
  """What a conversion did; `to_json` is the content of conversion_report.json."""
  format: str
  inputs: Dict[str, str]
  output_dir: str
  feature_rate: float
  on_error: str
  strict: bool = False
  status: str = "running"                              # "complete" or "failed"
  error: Optional[str] = None
  subset_map: Dict[str, str] = dataclasses.field(default_factory=dict)
  num_annotated_videos: int = 0
  num_feature_videos: int = 0
  written: Dict[str, int] = dataclasses.field(default_factory=dict)            # split -> videos
  written_instances: Dict[str, int] = dataclasses.field(default_factory=dict)  # split -> instances
  not_converted: Dict[str, int] = dataclasses.field(default_factory=dict)      # unmapped subset -> videos
  skipped: List[Dict[str, Any]] = dataclasses.field(default_factory=list)      # {video_id, problems}
  problems: List[Problem] = dataclasses.field(default_factory=list)
  warnings: List[Problem] = dataclasses.field(default_factory=list)
  estimated_feature_rate: Optional[float] = None      # median T / duration over written videos
  seconds: Dict[str, float] = dataclasses.field(default_factory=dict)          # phase -> wall seconds
  feature_bytes: int = 0                              # float32 bytes written

  @property
  def num_skipped(self) -> int:
    return len(self.skipped)

  def to_json(self) -> Dict[str, Any]:
    def counts(items):
      return dict(collections.Counter(p.kind for p in items))
    return {
        "status": self.status, "error": self.error, "format": self.format, "inputs": self.inputs,
        "output_dir": self.output_dir, "feature_rate": self.feature_rate, "on_error": self.on_error,
        "strict": self.strict,
        "subset_map": self.subset_map, "num_annotated_videos": self.num_annotated_videos,
        "num_feature_videos": self.num_feature_videos, "written": self.written,
        "written_instances": self.written_instances, "not_converted": self.not_converted,
        "num_skipped": self.num_skipped, "skipped": self.skipped,
        "problem_counts": counts(self.problems), "warning_counts": counts(self.warnings),
        "problems": [dataclasses.asdict(p) for p in self.problems],
        "warnings": [dataclasses.asdict(p) for p in self.warnings],
        "estimated_feature_rate": self.estimated_feature_rate, "seconds": self.seconds,
        "feature_bytes": self.feature_bytes,
    }

  def summary(self) -> str:
    """A few human-readable lines for the end of a conversion."""
    lines = [f"conversion {self.status}: format {self.format}, feature rate {self.feature_rate:.6g}/s, "
             f"output {self.output_dir}"]
    if self.error:
      lines.append(f"  error: {self.error.splitlines()[0]}")
    written = ", ".join(f"{split} {n} videos / {self.written_instances.get(split, 0)} instances"
                        for split, n in self.written.items()) or "nothing"
    lines.append(f"  written: {written}; annotated videos {self.num_annotated_videos}, feature videos "
                 f"{self.num_feature_videos}")
    if self.not_converted:
      lines.append(f"  not converted (unmapped subsets): {self.not_converted}")
    lines.append(f"  skipped: {self.num_skipped} videos" + (
        f" ({dict(collections.Counter(p.kind for p in self.problems))})" if self.problems else ""))
    for entry in self.skipped[:_MAX_LISTED]:
      lines.append(f"    {entry['video_id']}: " + "; ".join(p["kind"] for p in entry["problems"]))
    if self.num_skipped > _MAX_LISTED:
      lines.append(f"    ... and {self.num_skipped - _MAX_LISTED} more (see {REPORT_NAME})")
    if self.warnings:
      videos = len({p.video_id for p in self.warnings if p.video_id != "*"})
      lines.append(f"  warnings: {len(self.warnings)} in {videos} videos "
                   f"{dict(collections.Counter(p.kind for p in self.warnings))}, ground truth kept as given "
                   f"(see {REPORT_NAME})")
    if self.estimated_feature_rate:
      lines.append(f"  median T / duration: {self.estimated_feature_rate:.4f} features/s")
    if "total" in self.seconds:
      total = self.seconds["total"]
      lines.append(f"  time: {total:.1f} s, {sum(self.written.values()) / max(total, 1e-9):.1f} videos/s, "
                   f"{self.feature_bytes / 1e6 / max(total, 1e-9):.0f} MB/s of float32 features")
    return "\n".join(lines)


class _VideoProblem(Exception):
  """Raised by a feature source for a problem of one video."""

  def __init__(self, kind: str, message: str):
    super().__init__(message)
    self.kind = kind
    self.message = message


# ------------------------------------------------------------------------------------------- small helpers


def _is_local(path: str) -> bool:
  return "://" not in str(path)


def _register_file_systems(paths: Iterable[Optional[str]]) -> None:
  """Imports tensorflow-io when a path needs one of the file systems it adds (s3://, hdfs://, az://, ...)."""
  schemes = {str(p).split("://", 1)[0] for p in paths if p and not _is_local(p)}
  if schemes - {"gs", "file", "ram"}:
    import tensorflow_io  # pylint: disable=import-outside-toplevel,unused-import  (registers the file systems)


def _open_binary(path: str):
  # Plain files locally (faster reads for the 1 GB pickle); tf.io.gfile for every other file system.
  return open(path, "rb") if _is_local(path) else tf.io.gfile.GFile(path, "rb")


def _text(value: Any) -> str:
  """A string from str / bytes / numpy string scalars (the W-TALC files mix them)."""
  if isinstance(value, (bytes, np.bytes_)):
    try:
      return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
      return bytes(value).decode("latin-1")
  return str(value)


def _label_list(value: Any) -> List[str]:
  """Labels of one video: a list / array of names, a single name, or None (no labels)."""
  if value is None:
    return []
  if isinstance(value, (str, bytes, np.str_, np.bytes_)):
    return [_text(value)]   # iterating a bare name would give its characters
  return [_text(v) for v in np.ravel(np.asarray(value, dtype=object))]


def _number(value: Any) -> float:
  """A float from a JSON number or numeric string; raises ValueError otherwise (bool included)."""
  if isinstance(value, bool) or not isinstance(value, (int, float, str, np.integer, np.floating)):
    raise ValueError(f"not a number: {value!r}")
  return float(value)


def _write_json(path: str, obj: Any) -> None:
  """Writes JSON atomically: evaluation.io's temp + os.replace locally, temp + gfile rename elsewhere."""
  if _is_local(path):
    eval_io.write_json_atomic(path, obj, indent=1)
    return
  text = json.dumps(obj, indent=1, allow_nan=False)
  tmp = os.path.join(os.path.dirname(path), f".tmp-{uuid.uuid4().hex[:8]}-{os.path.basename(path)}")
  with tf.io.gfile.GFile(tmp, "w") as f:
    f.write(text)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def parse_subset_map(text: Optional[str]) -> Optional[Dict[str, str]]:
  """Parses "validation:train,test:test" into a dict; None / "" gives None (automatic)."""
  if not text:
    return None
  out = {}
  for item in text.split(","):
    if not item.strip():
      continue
    subset, sep, split = item.partition(":")
    if not sep or not subset.strip() or not split.strip():
      raise ValueError(f"subset map items are SUBSET:SPLIT, got {item!r} in {text!r}")
    out[subset.strip()] = split.strip()
  return out


def default_subset_map(subsets: Iterable[str]) -> Dict[str, str]:
  """ActivityNet conventions when a "training" subset exists, THUMOS14 conventions otherwise."""
  return dict(ACTIVITYNET_SUBSETS) if "training" in set(subsets) else dict(THUMOS14_SUBSETS)


def read_class_list(path: str) -> List[str]:
  """A class list file: a JSON list of names, or one name per line (blank lines ignored)."""
  with tf.io.gfile.GFile(path, "r") as f:
    text = f.read()
  if text.lstrip().startswith("["):
    names = [str(n) for n in json.loads(text)]
  else:
    names = [line.strip() for line in text.splitlines() if line.strip()]
  if not names or len(set(names)) != len(names):
    raise schema.DataFormatError(f"{path}: the class list must be non-empty and without duplicates")
  return names


def _parse_segments(raw: Any) -> np.ndarray:
  """[N, 2] float64 from a list of pairs / an array; raises ValueError when it is not pairs of numbers."""
  if raw is None:
    return np.zeros((0, 2))
  seg = np.asarray([[_number(v) for v in pair] for pair in raw] if isinstance(raw, (list, tuple)) else raw,
                   dtype=np.float64)
  if seg.size == 0:
    return np.zeros((0, 2))
  if seg.ndim != 2 or seg.shape[1] != 2:
    raise ValueError(f"segments must be [start, end] pairs, got shape {seg.shape}")
  return seg


# ------------------------------------------------------------------------------------------- annotation readers


def _load_npy(path: str, what: str) -> np.ndarray:
  try:
    with _open_binary(path) as f:
      # latin1: the releases were pickled by Python 2; it is the encoding NumPy documents for such arrays.
      return np.load(f, allow_pickle=True, encoding="latin1")
  except (OSError, ValueError, EOFError, pickle.UnpicklingError, tf.errors.OpError) as e:
    raise schema.DataFormatError(f"{path}: cannot read the {what}: {e}") from e


def read_wtalc_annotations(annotation_dir: str) -> Annotations:
  """Reads a W-TALC annotation folder (THUMOS14 or ActivityNet 1.2 / 1.3 layout).

  Args:
    annotation_dir: folder with videoname.npy, subset.npy, labels.npy, labels_all.npy, segments.npy,
      classlist.npy, duration.npy and optionally Ambiguous_test.txt.

  Returns:
    Annotations in file order; `VideoAnnotation.index` is the row in the features array.

  Raises:
    schema.DataFormatError: a file is missing or unreadable, files have different lengths, or the class list is
      empty or has duplicates. Problems of single videos are recorded in `VideoAnnotation.problems`.
  """
  names = ("videoname", "subset", "labels", "labels_all", "segments", "classlist", "duration")
  arrays = {n: _load_npy(os.path.join(annotation_dir, f"{n}.npy"), f"W-TALC {n} file") for n in names}
  classes = [_text(c) for c in np.ravel(arrays.pop("classlist"))]
  if not classes or len(set(classes)) != len(classes):
    raise schema.DataFormatError(f"{annotation_dir}/classlist.npy: class names must be non-empty and unique")
  video_names = [_text(v) for v in np.ravel(arrays["videoname"])]
  lengths = {n: len(a) for n, a in arrays.items()}
  if len(set(lengths.values())) != 1:
    raise schema.DataFormatError(
        f"{annotation_dir}: annotation files have different numbers of videos: {lengths}")
  videos = []
  for i, video_id in enumerate(video_names):
    problems = []
    try:
      duration = float(np.ravel(arrays["duration"][i])[0])   # duration.npy is [N, 1] in THUMOS14, [N] elsewhere
    except (ValueError, TypeError, IndexError) as e:
      duration = float("nan")
      problems.append(Problem(video_id, "bad_duration", f"unreadable duration {arrays['duration'][i]!r} ({e})"))
    labels_all = arrays["labels_all"][i]
    seg_labels = arrays["labels"][i]
    try:
      segments = _parse_segments(arrays["segments"][i])
    except (ValueError, TypeError) as e:
      segments = np.zeros((0, 2))
      problems.append(Problem(video_id, "bad_segment", f"unreadable segments ({e})"))
    seg_labels = _label_list(seg_labels)
    if len(seg_labels) != len(segments) and not problems:
      problems.append(Problem(video_id, "bad_annotation",
                              f"{len(segments)} segments but {len(seg_labels)} segment labels"))
    videos.append(VideoAnnotation(
        video_id=video_id, subset=_text(arrays["subset"][i]), duration=duration,
        labels=_label_list(labels_all),
        segments=[(float(s), float(e)) for s, e in segments], segment_labels=seg_labels, index=i,
        problems=problems))
  ambiguous = None
  ambiguous_path = os.path.join(annotation_dir, "Ambiguous_test.txt")
  if tf.io.gfile.exists(ambiguous_path):
    ambiguous = read_ambiguous(ambiguous_path)
  return Annotations(class_names=classes, videos=videos, source=annotation_dir, ambiguous=ambiguous)


def read_ambiguous(path: str) -> Dict[str, List[List[float]]]:
  """Reads THUMOS14 Ambiguous_test.txt ("video start end" per line, any whitespace) in file order.

  Raises:
    schema.DataFormatError: a line that is not a name and two numbers (names the line).
  """
  out: Dict[str, List[List[float]]] = {}
  with tf.io.gfile.GFile(path, "r") as f:
    for number, line in enumerate(f, 1):
      fields = line.split()   # the release separates the name with two spaces; split() copes with any
      if not fields:
        continue
      try:
        if len(fields) != 3:
          raise ValueError(f"expected 3 fields, got {len(fields)}")
        start, end = float(fields[1]), float(fields[2])
      except ValueError as e:
        raise schema.DataFormatError(f"{path}:{number}: expected 'video start end', got {line.strip()!r} ({e})")
      out.setdefault(fields[0], []).append([start, end])
  return out


class _DuplicateKeysDict(dict):
  """A JSON object that remembers keys seen more than once (json.load would silently keep the last)."""
  duplicates: Dict[str, int]


def _keep_first(pairs):
  obj = _DuplicateKeysDict()
  obj.duplicates = {}
  for key, value in pairs:
    if key in obj:
      obj.duplicates[key] = obj.duplicates.get(key, 1) + 1
    else:
      obj[key] = value
  return obj


def read_activitynet_json(path: str, class_names: Optional[Sequence[str]] = None) -> Annotations:
  """Reads an ActivityNet-format ground-truth JSON (official ActivityNet 1.2 / 1.3 files included).

  Args:
    path: JSON with a top-level "database" object.
    class_names: class list; None gives the sorted set of every label in the file.

  Returns:
    Annotations in file order. A video id listed twice keeps its first entry and gets a duplicate_id problem;
    other problems of single videos (missing keys, non-numeric segments) are recorded per video.

  Raises:
    schema.DataFormatError: unreadable file, invalid JSON, no "database" object.
  """
  try:
    with tf.io.gfile.GFile(path, "r") as f:
      data = json.loads(f.read(), object_pairs_hook=_keep_first)
  except (OSError, tf.errors.OpError, ValueError) as e:
    raise schema.DataFormatError(f"{path}: cannot read the ground-truth JSON: {e}") from e
  database = data.get("database") if isinstance(data, dict) else None
  if not isinstance(database, dict):
    raise schema.DataFormatError(f'{path}: expected a top-level "database" object')
  duplicates = getattr(database, "duplicates", {})
  videos, all_labels = [], set()
  for i, (video_id, entry) in enumerate(database.items()):
    problems = []
    if video_id in duplicates:
      problems.append(Problem(video_id, "duplicate_id", f"listed {duplicates[video_id]} times in {path}"))
    if not isinstance(entry, dict):
      problems.append(Problem(video_id, "bad_annotation", "entry is not an object"))
      entry = {}
    subset = entry.get("subset")
    if not isinstance(subset, str):
      problems.append(Problem(video_id, "bad_annotation", f'missing or non-string "subset": {subset!r}'))
      subset = ""
    duration = None
    if entry.get("duration") is not None:
      try:
        duration = _number(entry["duration"])
      except ValueError:
        problems.append(Problem(video_id, "bad_duration", f"duration {entry['duration']!r} is not a number"))
        duration = float("nan")
    annotations = entry.get("annotations")
    if not isinstance(annotations, list):
      problems.append(Problem(video_id, "bad_annotation", f'missing or non-list "annotations": {annotations!r}'))
      annotations = []
    segments, seg_labels = [], []
    for j, ann in enumerate(annotations):
      try:
        label = ann["label"]
        if not isinstance(label, str):
          raise ValueError(f"label {label!r} is not a string")
        seg = ann["segment"]
        if not isinstance(seg, (list, tuple)) or len(seg) != 2:
          raise ValueError(f"segment {seg!r} is not [start, end]")
        segments.append((_number(seg[0]), _number(seg[1])))
        seg_labels.append(label)
      except (KeyError, TypeError, ValueError) as e:
        problems.append(Problem(video_id, "bad_annotation", f"annotation {j}: {e!r}"))
    all_labels.update(seg_labels)
    # Video-level labels: the distinct instance labels, in first-seen order.
    videos.append(VideoAnnotation(
        video_id=str(video_id), subset=subset, duration=duration, labels=list(dict.fromkeys(seg_labels)),
        segments=segments, segment_labels=seg_labels, index=i, problems=problems))
  classes = list(class_names) if class_names is not None else sorted(all_labels)
  if not classes:
    raise schema.DataFormatError(f"{path}: no labels in the file and no class list given")
  return Annotations(class_names=classes, videos=videos, source=path)


# ------------------------------------------------------------------------------------------- feature sources


def _as_features(x: Any, what: str) -> np.ndarray:
  """Checks that x is a 2-D float array and returns it as float32 (no copy when it already is)."""
  if not isinstance(x, np.ndarray):
    raise _VideoProblem("bad_shape", f"{what} is a {type(x).__name__}, not an array")
  if x.size == 0 and x.ndim <= 2:
    # Empty arrays come as (0,) as often as (0, D); either way the video has no features.
    raise _VideoProblem("zero_length", f"{what} has no feature rows (shape {x.shape})")
  if x.dtype.kind != "f":
    raise _VideoProblem("bad_shape", f"{what} has dtype {x.dtype}, expected floats")
  if x.ndim != 2:
    raise _VideoProblem("bad_shape", f"{what} has shape {x.shape}, expected [T, D]")
  return x.astype(np.float32, copy=False)


def _split_joint(x: Any, dim: int, what: str) -> Tuple[np.ndarray, np.ndarray]:
  x = _as_features(x, what)
  if x.shape[1] != 2 * dim:
    raise _VideoProblem("bad_shape", f"{what} has shape {x.shape}, expected [T, {2 * dim}] (RGB then flow)")
  return x[:, :dim], x[:, dim:]   # [T, dim] views each (RGB first, as in every I3D joint release)


class WtalcFeatures:
  """The W-TALC object array, loaded whole; video i of the annotations is row i."""

  def __init__(self, path: str, stream_dim: int):
    self.description = path
    self._dim = stream_dim
    array = _load_npy(path, "W-TALC features file")
    if array.ndim == 0 or (array.dtype != object and array.ndim != 3):
      raise schema.DataFormatError(
          f"{path}: expected an object array of [T, {2 * stream_dim}] arrays, got dtype {array.dtype} shape "
          f"{array.shape}")
    # A list, so each video's array can be dropped once written (lowers memory as the conversion proceeds).
    self._features = list(array)
    del array

  def __len__(self):
    return len(self._features)

  def load(self, video: VideoAnnotation) -> Tuple[np.ndarray, np.ndarray]:
    x = self._features[video.index]
    if x is None:
      raise _VideoProblem("missing_features", f"row {video.index} of {self.description} is empty (None)")
    return _split_joint(x, self._dim, f"row {video.index} of the features")

  def num_rows(self, video: VideoAnnotation) -> Optional[int]:
    """T without copying anything, or None when the row is not a [T, D] array."""
    x = self._features[video.index]
    return int(x.shape[0]) if isinstance(x, np.ndarray) and x.ndim == 2 else None

  def release(self, video: VideoAnnotation) -> None:
    self._features[video.index] = None


class PerVideoFeatures:
  """One .npy per video (joint) or per video and stream (DIR/rgb, DIR/flow), listed up front, read one by one.

  Feature file names are the video ids (minus `id_prefix`, e.g. "v_" for ActivityNet features named after
  YouTube ids with the usual prefix).
  """

  def __init__(self, features_dir: str, stream_dim: int, layout: str = "auto", id_prefix: str = ""):
    if not tf.io.gfile.isdir(features_dir):
      raise schema.DataFormatError(f"features directory {features_dir} does not exist")
    self.description = features_dir
    self._dim = stream_dim
    if layout == "auto":
      has_streams = any(tf.io.gfile.isdir(os.path.join(features_dir, s)) for s in schema.STREAMS)
      layout = "separate" if has_streams else "joint"
    if layout not in ("separate", "joint"):
      raise ValueError(f"layout must be auto, separate or joint, got {layout!r}")
    self.layout = layout
    self.problems: List[Problem] = []
    # video id -> {stream or "joint": path}
    self._files: Dict[str, Dict[str, str]] = collections.defaultdict(dict)
    folders = {s: os.path.join(features_dir, s) for s in schema.STREAMS} if layout == "separate" \
        else {"joint": features_dir}
    for key, folder in folders.items():
      names = sorted(tf.io.gfile.listdir(folder)) if tf.io.gfile.isdir(folder) else []
      for name in names:
        if not name.endswith(".npy"):
          continue
        video_id = name[:-len(".npy")]
        if id_prefix and video_id.startswith(id_prefix):
          video_id = video_id[len(id_prefix):]
        if key in self._files[video_id]:
          self.problems.append(Problem(video_id, "duplicate_id",
                                       f"two feature files map to this id in {folder} (prefix {id_prefix!r})"))
        self._files[video_id][key] = os.path.join(folder, name)

  def ids(self) -> List[str]:
    return list(self._files)

  def has(self, video_id: str) -> bool:
    return video_id in self._files

  def _read(self, path: str) -> np.ndarray:
    try:
      with _open_binary(path) as f:
        return np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError, tf.errors.OpError) as e:
      raise _VideoProblem("unreadable_features", f"{path}: {e}") from e

  def num_rows(self, video: VideoAnnotation) -> Optional[int]:
    """T from the .npy header of the first stream's file (a few hundred bytes), None when unknown."""
    files = self._files.get(video.video_id, {})
    path = files.get("joint") or files.get(schema.STREAMS[0])
    if path is None:
      return None
    try:
      with _open_binary(path) as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
            else np.lib.format.read_array_header_2_0
        shape, _, _ = read_header(f)
    except (OSError, ValueError, EOFError, tf.errors.OpError):
      return None   # reported properly when the file is read
    return int(shape[0]) if len(shape) == 2 else None

  def load(self, video: VideoAnnotation) -> Tuple[np.ndarray, np.ndarray]:
    files = self._files.get(video.video_id, {})
    if self.layout == "joint":
      return _split_joint(self._read(files["joint"]), self._dim, files["joint"])
    missing = [s for s in schema.STREAMS if s not in files]
    if missing:
      raise _VideoProblem("missing_features", f"no {'/'.join(missing)} file in {self.description}")
    return tuple(_as_features(self._read(files[s]), files[s]) for s in schema.STREAMS)

  def release(self, video: VideoAnnotation) -> None:
    del video


class Hdf5Features:
  """An HDF5 file read through tensorflow-io, one dataset at a time.

  Listing: `tfio.IOTensor.from_hdf5` enumerates every dataset of the file by full path ("/vid/rgb", "/vid");
  groups are implied by the paths. A dataset whose last path component is "rgb" or "flow" is that stream of the
  video named by the rest of the path; any other dataset is a joint [T, 2 * D] video named by its path.
  """

  def __init__(self, path: str, stream_dim: int, id_prefix: str = ""):
    import tensorflow_io as tfio  # pylint: disable=import-outside-toplevel  (heavy; only this format needs it)
    if not tf.io.gfile.exists(path):
      raise schema.DataFormatError(f"HDF5 file {path} does not exist")
    try:   # tensorflow-io crashes the process on a file that is not HDF5 or is truncated: check first
      hdf5_check.check_hdf5_file(path, _open_binary)
    except hdf5_check.Hdf5FileError as e:
      raise schema.DataFormatError(str(e)) from e
    self.description = path
    self._dim = stream_dim
    try:
      self._io = tfio.IOTensor.from_hdf5(path)
      keys = [k.numpy().decode("utf-8") for k in self._io.keys]
    except tf.errors.OpError as e:
      raise schema.DataFormatError(
          f"{path}: tensorflow-io cannot open this HDF5 file ({e.message}). It reads float32/float64 datasets; "
          "convert float16 ones to float32 first") from e
    # IOTensor.__call__(key) finds a key by comparing eager string tensors one by one (a TF op each), so
    # looking up every video costs O(#datasets^2) ops: 400 videos took minutes. Map keys to their per-dataset
    # IOTensors once; fall back to the public call if a tensorflow-io version lacks the private list.
    values = getattr(self._io, "_values", None)
    self._by_key = dict(zip(keys, values)) if values is not None and len(values) == len(keys) else None
    self.problems: List[Problem] = []
    self._files: Dict[str, Dict[str, str]] = collections.defaultdict(dict)
    for key in sorted(keys):
      parent, _, last = key.rpartition("/")
      if last in schema.STREAMS and parent:
        video_id, stream = parent.lstrip("/"), last
      else:
        video_id, stream = key.lstrip("/"), "joint"
      if id_prefix and video_id.startswith(id_prefix):
        video_id = video_id[len(id_prefix):]
      self._files[video_id][stream] = key
    for video_id, files in self._files.items():
      if "joint" in files and len(files) > 1:
        self.problems.append(Problem(video_id, "duplicate_id", f"both a joint dataset and stream datasets in {path}"))

  def ids(self) -> List[str]:
    return list(self._files)

  def has(self, video_id: str) -> bool:
    return video_id in self._files

  def num_rows(self, video: VideoAnnotation) -> Optional[int]:
    """T from the dataset's shape (HDF5 metadata, no data read), None when unknown."""
    files = self._files.get(video.video_id, {})
    key = files.get("joint") or files.get(schema.STREAMS[0])
    if key is None:
      return None
    try:
      shape = self._dataset(key).shape.numpy()
    except (tf.errors.OpError, ValueError):
      return None
    return int(shape[0]) if len(shape) == 2 else None

  def _dataset(self, key: str):
    return self._by_key[key] if self._by_key is not None else self._io(key)

  def _read(self, key: str) -> np.ndarray:
    try:
      return self._dataset(key).to_tensor().numpy()
    except (tf.errors.OpError, ValueError) as e:
      raise _VideoProblem("unreadable_features", f"{self.description}:{key}: {e}") from e

  def load(self, video: VideoAnnotation) -> Tuple[np.ndarray, np.ndarray]:
    files = self._files.get(video.video_id, {})
    if "joint" in files:
      return _split_joint(self._read(files["joint"]), self._dim, f"{self.description}:{files['joint']}")
    missing = [s for s in schema.STREAMS if s not in files]
    if missing:
      raise _VideoProblem("missing_features", f"no {'/'.join(missing)} dataset in {self.description}")
    return tuple(_as_features(self._read(files[s]), f"{self.description}:{files[s]}") for s in schema.STREAMS)

  def release(self, video: VideoAnnotation) -> None:
    del video


# ------------------------------------------------------------------------------------------- checks


def _annotation_problems(video: VideoAnnotation, class_index: Mapping[str, int], tolerance: float) -> List[Problem]:
  """Problems visible without features: classes, segment order, negative starts, duration."""
  out = list(video.problems)
  vid = video.video_id
  if not vid:
    out.append(Problem(vid, "bad_annotation", "empty video id"))
  unknown = sorted(set(video.labels + video.segment_labels) - set(class_index))
  if unknown:
    out.append(Problem(vid, "unknown_class", f"labels {unknown} are not in the class list"))
  bad = [(s, e) for s, e in video.segments if not (np.isfinite(s) and np.isfinite(e)) or e < s]
  if bad:
    out.append(Problem(vid, "bad_segment", f"{len(bad)} segments not finite or ending before they start, e.g. "
                       f"{[list(b) for b in bad[:3]]}"))
  early = [(s, e) for s, e in video.segments if s < -tolerance]
  if early:
    out.append(Problem(vid, "segment_out_of_range", f"{len(early)} segments start before 0 s (tolerance "
                       f"{tolerance} s), e.g. {[list(b) for b in early[:3]]}"))
  if video.duration is not None and not (np.isfinite(video.duration) and video.duration > 0):
    out.append(Problem(vid, "bad_duration", f"duration {video.duration} is not a positive number"))
  return out


def _feature_problems(vid: str, rgb: np.ndarray, flow: np.ndarray, dim: int) -> List[Problem]:
  out = []
  for stream, x in (("rgb", rgb), ("flow", flow)):
    if x.shape[1] != dim:
      out.append(Problem(vid, "bad_shape", f"{stream} features have shape {x.shape}, expected [T, {dim}]"))
  if rgb.shape[0] != flow.shape[0]:
    out.append(Problem(vid, "stream_length_mismatch", f"rgb has {rgb.shape[0]} rows, flow {flow.shape[0]}"))
  if rgb.shape[0] == 0 or flow.shape[0] == 0:
    out.append(Problem(vid, "zero_length", "no feature rows"))
  if not out:
    for stream, x in (("rgb", rgb), ("flow", flow)):
      if not np.isfinite(x).all():
        rows = np.flatnonzero(~np.isfinite(x).all(axis=1))
        out.append(Problem(vid, "non_finite", f"{stream} features contain NaN or Inf in {rows.size} rows, "
                           f"first at row {rows[0]}"))
  return out


def _range_problems(video: VideoAnnotation, num_rows: int, feature_rate: float, tolerance: float) -> List[Problem]:
  feature_span = num_rows / feature_rate
  limit = max(video.duration or 0.0, feature_span) + tolerance
  late = [(s, e) for s, e in video.segments if e > limit]
  if not late:
    return []
  return [Problem(video.video_id, "segment_out_of_range",
                  f"{len(late)} segments end after the video (duration {video.duration}, features {feature_span:.2f}"
                  f" s, tolerance {tolerance} s), e.g. {[list(b) for b in late[:3]]}")]


# Problems that leave the features usable: warnings (instances kept as given) unless ConversionOptions.strict.
TOLERATED_KINDS = ("segment_out_of_range",)


def _split_tolerated(found: Sequence[Problem], strict: bool) -> Tuple[List[Problem], List[Problem]]:
  """(problems, warnings): without strict, the TOLERATED_KINDS become warnings that say the data is kept."""
  if strict:
    return list(found), []
  problems = [p for p in found if p.kind not in TOLERATED_KINDS]
  warnings = [dataclasses.replace(p, message=f"{p.message}; kept as given (--strict refuses it)")
              for p in found if p.kind in TOLERATED_KINDS]
  return problems, warnings


def _instance_warnings(video: VideoAnnotation) -> List[Problem]:
  """Zero-length and repeated instances: kept as given in every mode (the evaluator handles both)."""
  out = []
  zero = [(s, e) for s, e in video.segments if s == e]
  if zero:
    out.append(Problem(video.video_id, "zero_length_instance", f"{len(zero)} instances start where they end, "
                       f"e.g. {[list(z) for z in zero[:3]]} (kept as given)"))
  counts = collections.Counter(zip(video.segment_labels, video.segments))
  repeated = [(label, list(seg), n) for (label, seg), n in counts.items() if n > 1]
  if repeated:
    out.append(Problem(video.video_id, "repeated_instance", f"{len(repeated)} (label, segment) pairs appear more "
                       f"than once, e.g. {repeated[:3]} (kept as given)"))
  return out


def _warnings(video: VideoAnnotation, num_rows: int, feature_rate: float) -> List[Problem]:
  out = _instance_warnings(video)
  missing = sorted(set(video.segment_labels) - set(video.labels))
  if missing:
    out.append(Problem(video.video_id, "labels_mismatch",
                       f"instance labels {missing} are not among the video labels {video.labels} (kept as given)"))
  if video.duration:
    span = num_rows / feature_rate
    if abs(span - video.duration) > max(2.0, 0.1 * video.duration):
      out.append(Problem(video.video_id, "duration_mismatch",
                         f"{num_rows} features at {feature_rate:.4f}/s span {span:.1f} s, duration is "
                         f"{video.duration:.1f} s"))
  return out


# ------------------------------------------------------------------------------------------- conversion


def _is_temporary(name: str) -> bool:
  """DatasetWriter's and _write_json's temporaries (".tmp-TOKEN-NAME") and evaluation.io's (".NAME.XXXX.tmp")."""
  return name.startswith(".tmp-") or (name.startswith(".") and name.endswith(".tmp"))


def _only_a_failed_conversion(output_dir: str, names: Sequence[str]) -> bool:
  """True when output_dir holds nothing but what a failed conversion left: its report (status "failed"), maybe
  its side files and temporaries, and no manifest. A rerun may then replace it without --overwrite."""
  if REPORT_NAME not in names or schema.MANIFEST_NAME in names:
    return False
  if any(n not in (REPORT_NAME, GROUND_TRUTH_NAME, AMBIGUOUS_NAME) and not _is_temporary(n) for n in names):
    return False
  try:
    with tf.io.gfile.GFile(os.path.join(output_dir, REPORT_NAME)) as f:
      return json.loads(f.read()).get("status") == "failed"
  except (OSError, tf.errors.OpError, ValueError, AttributeError):
    return False


def _prepare_output_dir(output_dir: str, overwrite: bool) -> None:
  """Refuses a non-empty directory unless overwrite (or it holds only a failed conversion's report); otherwise
  removes what a conversion wrote there."""
  names = tf.io.gfile.listdir(output_dir) if tf.io.gfile.isdir(output_dir) else []
  if names:
    if _only_a_failed_conversion(output_dir, [n.rstrip("/") for n in names]):
      logging.info("%s holds only a failed conversion's report: replacing it", output_dir)
      overwrite = True
    if not overwrite:
      raise FileExistsError(f"{output_dir} exists and is not empty; pass --overwrite to replace its dataset")
    manifest = os.path.join(output_dir, schema.MANIFEST_NAME)
    if tf.io.gfile.exists(manifest):
      tf.io.gfile.remove(manifest)   # first, so the directory stops looking complete
    for name in tf.io.gfile.listdir(output_dir):
      ours = name in (GROUND_TRUTH_NAME, AMBIGUOUS_NAME, REPORT_NAME) or name.endswith(schema.SHARD_SUFFIX) or \
          _is_temporary(name)   # of a killed conversion (shards, JSON files)
      if ours and not tf.io.gfile.isdir(os.path.join(output_dir, name)):
        tf.io.gfile.remove(os.path.join(output_dir, name))
  tf.io.gfile.makedirs(output_dir)


def _fail_message(where: str, problems: Sequence[Problem], output_dir: str) -> str:
  lines = [f"{where}: {len(problems)} problem(s) with the input:"]
  lines += [f"  {p}" for p in problems[:_MAX_LISTED]]
  if len(problems) > _MAX_LISTED:
    lines.append(f"  ... and {len(problems) - _MAX_LISTED} more")
  lines.append(f"Every problem is listed in {os.path.join(output_dir, REPORT_NAME)}; --on_error=skip leaves "
               "such videos out and converts the rest.")
  return "\n".join(lines)


def convert(annotations: Annotations, source, output_dir: str, feature_rate: float,
            options: ConversionOptions, report: ConversionReport) -> ConversionReport:
  """Converts annotated videos from a feature source into a dataset directory (the shared engine).

  Args:
    annotations: the annotation side (see the readers above).
    source: WtalcFeatures, PerVideoFeatures or Hdf5Features (anything with load / release, plus ids / has for
      id-matched sources).
    output_dir: dataset directory (checked by `_prepare_output_dir` before the inputs were read).
    feature_rate: features per second.
    options: ConversionOptions.
    report: filled in and written to OUTPUT_DIR/conversion_report.json, on failure too.

  Returns:
    The report (status "complete").

  Raises:
    schema.DataFormatError: on_error="fail" and a video has a problem (the message lists them), or a problem no
      mode can skip.
  """
  start = time.perf_counter()
  tol = options.segment_tolerance
  class_index = {c: i for i, c in enumerate(annotations.class_names)}
  subset_map = options.subset_map or default_subset_map(v.subset for v in annotations.videos)
  report.subset_map = subset_map
  report.strict = options.strict
  report.num_annotated_videos = len(annotations.videos)
  positional = isinstance(source, WtalcFeatures)
  report.num_feature_videos = len(source) if positional else len(source.ids())

  # Phase 1: everything decidable without reading features, for every video, so fail mode lists all of it.
  todo, problems_of, warned_of = [], collections.defaultdict(list), collections.defaultdict(list)
  range_checked = set()   # videos whose segment ends were checked against T in phase 1
  id_counts = collections.Counter(v.video_id for v in annotations.videos)
  for video in annotations.videos:
    split = subset_map.get(video.subset)
    if split is None:
      report.not_converted[video.subset] = report.not_converted.get(video.subset, 0) + 1
      continue
    found, tolerated = _split_tolerated(_annotation_problems(video, class_index, tol), options.strict)
    if id_counts[video.video_id] > 1:
      # The same id twice (wtalc): neither row can be told apart in the ground truth, so both are problems.
      found.append(Problem(video.video_id, "duplicate_id", f"appears {id_counts[video.video_id]} times in "
                           f"{annotations.source} (this is row {video.index})"))
    if not positional and not source.has(video.video_id):
      found.append(Problem(video.video_id, "missing_features", f"no features in {source.description}"))
    elif not found:
      # Segment ranges need T, which every source gives without reading the features.
      rows = source.num_rows(video)
      if rows:
        late, late_tolerated = _split_tolerated(_range_problems(video, rows, feature_rate, tol), options.strict)
        found += late
        tolerated += late_tolerated
        range_checked.add(id(video))
    problems_of[id(video)] = found
    warned_of[id(video)] = tolerated
    todo.append((split, video))
  extra = []
  if not positional:
    # Feature-side problems (two files for one id) belong to the annotated video when there is one.
    source_problems = collections.defaultdict(list)
    for problem in source.problems:
      source_problems[problem.video_id].append(problem)
    for _, video in todo:
      problems_of[id(video)].extend(source_problems.pop(video.video_id, []))
    extra += [p for found in source_problems.values() for p in found]
    annotated = {v.video_id for v in annotations.videos}
    extra += [Problem(f, "missing_annotation", f"features in {source.description} but no annotation in "
                      f"{annotations.source}") for f in source.ids() if f not in annotated]
  early = [p for _, v in todo for p in problems_of[id(v)]] + extra
  report.problems.extend(early)
  for problem in extra:
    report.skipped.append({"video_id": problem.video_id, "subset": None, "problems": [dataclasses.asdict(problem)]})
  where = "converting " + ", ".join(f"{k}={v}" for k, v in report.inputs.items())
  if early and options.on_error == "fail":
    raise schema.DataFormatError(_fail_message(where, early, output_dir))

  # Phase 2: one video at a time: read, check, write.
  ground_truth: Dict[str, Any] = {}
  rates, timings = [], collections.Counter()
  total = len(todo)
  last_log = time.perf_counter()
  extra_manifest = {"converter": {"format": report.format, "inputs": report.inputs, "subset_map": subset_map,
                                  "on_error": options.on_error, "strict": options.strict, "report": REPORT_NAME,
                                  "ground_truth": GROUND_TRUTH_NAME,
                                  "ambiguous": AMBIGUOUS_NAME if annotations.ambiguous is not None else None}}
  with schema.DatasetWriter(output_dir, annotations.class_names, feature_rate,
                            feature_dims={s: options.stream_dim for s in schema.STREAMS},
                            videos_per_shard=options.videos_per_shard, overwrite=options.overwrite,
                            extra=extra_manifest) as writer:
    for done, (split, video) in enumerate(todo, 1):
      found = problems_of[id(video)]
      rgb = flow = None
      if not found:
        t0 = time.perf_counter()
        try:
          rgb, flow = source.load(video)
          found = _feature_problems(video.video_id, rgb, flow, options.stream_dim)
        except _VideoProblem as e:
          found = [Problem(video.video_id, e.kind, e.message)]
        timings["read_s"] += time.perf_counter() - t0
        if not found and id(video) not in range_checked:   # phase 1 could not check: the source gave no T
          found, late_tolerated = _split_tolerated(_range_problems(video, rgb.shape[0], feature_rate, tol),
                                                   options.strict)
          warned_of[id(video)] += late_tolerated
        if found:
          report.problems.extend(found)
          if options.on_error == "fail":
            raise schema.DataFormatError(_fail_message(where, found, output_dir))
      if found:
        report.skipped.append({"video_id": video.video_id, "subset": video.subset,
                               "problems": [dataclasses.asdict(p) for p in found]})
        source.release(video)
        continue
      num_rows = rgb.shape[0]
      report.warnings.extend(warned_of[id(video)])
      report.warnings.extend(_warnings(video, num_rows, feature_rate))
      duration = video.duration if video.duration is not None else num_rows / feature_rate
      if video.duration:
        rates.append(num_rows / video.duration)
      t0 = time.perf_counter()
      writer.write(split, schema.Video(
          video_id=video.video_id,
          labels=np.array(sorted({class_index[l] for l in video.labels}), np.int64),   # [L]
          duration=duration, rgb=rgb, flow=flow,
          segments=np.array(video.segments, np.float32).reshape(-1, 2),               # [N, 2] seconds
          segment_labels=np.array([class_index[l] for l in video.segment_labels], np.int64)),  # [N]
          source=f"{source.description}")
      timings["write_s"] += time.perf_counter() - t0
      source.release(video)
      del rgb, flow
      report.written[split] = report.written.get(split, 0) + 1
      report.written_instances[split] = report.written_instances.get(split, 0) + len(video.segments)
      report.feature_bytes += num_rows * 2 * options.stream_dim * 4
      if split == EVAL_SPLIT:
        ground_truth[video.video_id] = {
            "subset": EVAL_SPLIT, "duration": float(duration),
            "annotations": [{"label": l, "segment": [float(s), float(e)]}
                            for l, (s, e) in zip(video.segment_labels, video.segments)]}
      now = time.perf_counter()
      if done % max(1, options.log_every) == 0 or done == total or now - last_log > 30:
        last_log = now
        elapsed = max(now - start, 1e-9)
        logging.info("converted %d/%d videos (%d skipped): %.1f videos/s, %.0f MB/s", done, total,
                     report.num_skipped, done / elapsed, report.feature_bytes / 1e6 / elapsed)

    # Side files before the manifest (DatasetWriter.close, on leaving the block): a reader that sees the
    # manifest also sees the ground truth and the report.
    _write_json(os.path.join(output_dir, GROUND_TRUTH_NAME), {"version": "converted by stpn_tf", "database":
                                                              ground_truth})
    if annotations.ambiguous is not None:
      _write_json(os.path.join(output_dir, AMBIGUOUS_NAME), {"database": {
          vid: {"subset": EVAL_SPLIT, "annotations": [{"label": AMBIGUOUS_LABEL, "segment": seg} for seg in segs]}
          for vid, segs in annotations.ambiguous.items()}})
    if rates:
      report.estimated_feature_rate = float(statistics.median(rates))
      if abs(report.estimated_feature_rate - feature_rate) > 0.1 * feature_rate:
        report.warnings.append(Problem("*", "feature_rate_mismatch",
                                       f"median T / duration is {report.estimated_feature_rate:.4f}/s but the "
                                       f"feature rate is {feature_rate:.4f}/s: check --feature_rate"))
    report.seconds.update({k: round(v, 3) for k, v in timings.items()})
    report.seconds["total"] = round(time.perf_counter() - start, 3)
    _write_json(os.path.join(output_dir, REPORT_NAME), report.to_json())   # still "running": no manifest yet
  # "complete" only once the manifest is there: a kill during the shards' renames or the manifest's write leaves
  # a report that says "running", never a "complete" one without a dataset.
  report.status = "complete"
  _write_json(os.path.join(output_dir, REPORT_NAME), report.to_json())
  return report


def _run(report: ConversionReport, output_dir: str, body) -> ConversionReport:
  """Runs a conversion; on any failure records it in the report (written to the output dir) and re-raises."""
  try:
    return body()
  except BaseException as e:
    report.status = "failed"
    report.error = f"{type(e).__name__}: {e}"
    if isinstance(e, FileExistsError) or not tf.io.gfile.isdir(output_dir):
      raise   # the directory is not ours to write into
    try:
      _write_json(os.path.join(output_dir, REPORT_NAME), report.to_json())
    except Exception:  # pylint: disable=broad-except
      logging.exception("could not write the failure report")
    raise


def _resolve_rate(feature_rate: Optional[float], names: Sequence[str]) -> float:
  if feature_rate is None:
    if any("thumos14" in os.path.basename(os.path.normpath(n)).lower() for n in names):
      return schema.THUMOS14_FEATURE_RATE
    raise schema.DataFormatError(
        f"--feature_rate is required for {list(names)}: only THUMOS14 releases default to 25/16 features/s. "
        "Most I3D releases (W-TALC's ActivityNet 1.2 included) use 16-frame chunks of 25 fps video, i.e. 1.5625; "
        "conversion_report.json shows the median T / duration to check the value.")
  if not feature_rate > 0:
    raise schema.DataFormatError(f"feature rate must be positive, got {feature_rate}")
  return float(feature_rate)


def _apply_class_list(annotations: Annotations, options: ConversionOptions) -> None:
  if options.class_names is not None:
    annotations.class_names = list(options.class_names)


def convert_wtalc(features_path: str, annotation_dir: str, output_dir: str, feature_rate: Optional[float] = None,
                  options: Optional[ConversionOptions] = None) -> ConversionReport:
  """Converts a W-TALC release (THUMOS14 or ActivityNet 1.2 / 1.3 object-array .npy plus annotation folder).

  Args:
    features_path: the *-I3D-JOINTFeatures.npy object array.
    annotation_dir: the *-Annotations folder.
    output_dir: dataset directory to create.
    feature_rate: features per second; None is 25/16 for THUMOS14 file names and an error otherwise.
    options: ConversionOptions.

  Returns:
    The ConversionReport (also in OUTPUT_DIR/conversion_report.json).
  """
  options = options or ConversionOptions()
  _register_file_systems([features_path, annotation_dir, output_dir])
  rate = _resolve_rate(feature_rate, [features_path, annotation_dir])
  report = ConversionReport(format="wtalc", inputs={"features": features_path, "annotations": annotation_dir},
                            output_dir=output_dir, feature_rate=rate, on_error=options.on_error)
  _prepare_output_dir(output_dir, options.overwrite)

  def body():
    annotations = read_wtalc_annotations(annotation_dir)
    _apply_class_list(annotations, options)
    t0 = time.perf_counter()
    source = WtalcFeatures(features_path, options.stream_dim)
    report.seconds["load_features_s"] = round(time.perf_counter() - t0, 3)
    logging.info("loaded %d feature arrays from %s in %.1f s", len(source), features_path,
                 report.seconds["load_features_s"])
    if len(source) != len(annotations.videos):
      raise schema.DataFormatError(
          f"{features_path} holds {len(source)} videos but {annotation_dir}/videoname.npy lists "
          f"{len(annotations.videos)}: features are matched by position, so no video can be trusted")
    return convert(annotations, source, output_dir, rate, options, report)

  return _run(report, output_dir, body)


def convert_per_video(features_dir: str, ground_truth_path: str, output_dir: str, feature_rate: Optional[float],
                      options: Optional[ConversionOptions] = None, layout: str = "auto", id_prefix: str = "",
                      ambiguous_path: Optional[str] = None) -> ConversionReport:
  """Converts one .npy per video (joint [T, 2D]) or per video and stream (DIR/rgb, DIR/flow; [T, D] each).

  Args:
    features_dir: the feature folder.
    ground_truth_path: ActivityNet-format JSON (labels, segments, subsets, optional durations).
    output_dir: dataset directory to create.
    feature_rate: features per second; None is 25/16 when the path names THUMOS14, an error otherwise.
    options: ConversionOptions.
    layout: "auto" (separate when DIR/rgb or DIR/flow exists), "separate" or "joint".
    id_prefix: stripped from feature file names before matching video ids (e.g. "v_").
    ambiguous_path: optional THUMOS14 Ambiguous_test.txt, copied to ambiguous.json.

  Returns:
    The ConversionReport.
  """
  options = options or ConversionOptions()
  _register_file_systems([features_dir, ground_truth_path, ambiguous_path, output_dir])
  rate = _resolve_rate(feature_rate, [features_dir, ground_truth_path])
  report = ConversionReport(format="per_video", inputs={"features_dir": features_dir,
                                                        "ground_truth": ground_truth_path},
                            output_dir=output_dir, feature_rate=rate, on_error=options.on_error)
  _prepare_output_dir(output_dir, options.overwrite)

  def body():
    annotations = read_activitynet_json(ground_truth_path, options.class_names)
    if ambiguous_path:
      annotations.ambiguous = read_ambiguous(ambiguous_path)
    source = PerVideoFeatures(features_dir, options.stream_dim, layout, id_prefix)
    report.inputs["layout"] = source.layout
    return convert(annotations, source, output_dir, rate, options, report)

  return _run(report, output_dir, body)


def convert_hdf5(features_path: str, ground_truth_path: str, output_dir: str, feature_rate: Optional[float],
                 options: Optional[ConversionOptions] = None, id_prefix: str = "",
                 ambiguous_path: Optional[str] = None) -> ConversionReport:
  """Converts an HDF5 feature file (group per video with rgb / flow datasets, or a joint dataset per video).

  Args:
    features_path: the .h5 file (any file system tensorflow-io reads).
    ground_truth_path: ActivityNet-format JSON.
    output_dir: dataset directory to create.
    feature_rate: features per second; None is 25/16 when the path names THUMOS14, an error otherwise.
    options: ConversionOptions.
    id_prefix: stripped from dataset names before matching video ids.
    ambiguous_path: optional THUMOS14 Ambiguous_test.txt.

  Returns:
    The ConversionReport.
  """
  options = options or ConversionOptions()
  _register_file_systems([features_path, ground_truth_path, ambiguous_path, output_dir])
  rate = _resolve_rate(feature_rate, [features_path, ground_truth_path])
  report = ConversionReport(format="hdf5", inputs={"features": features_path, "ground_truth": ground_truth_path},
                            output_dir=output_dir, feature_rate=rate, on_error=options.on_error)
  _prepare_output_dir(output_dir, options.overwrite)

  def body():
    annotations = read_activitynet_json(ground_truth_path, options.class_names)
    if ambiguous_path:
      annotations.ambiguous = read_ambiguous(ambiguous_path)
    source = Hdf5Features(features_path, options.stream_dim, id_prefix)
    return convert(annotations, source, output_dir, rate, options, report)

  return _run(report, output_dir, body)
