"""Reading and writing ActivityNet-format detection files (NumPy/pandas only).

Formats (ActivityNet challenge JSON):

* Ground truth: ``{"database": {video_id: {"subset": str, "annotations":
  [{"label": str, "segment": [start, end]}, ...], "duration": float}}}``.
  ``"duration"`` and any other keys are optional and ignored. ``"subset"`` is
  only required when a ``subset`` filter is given.
* Predictions: ``{"results": {video_id: [{"label": str, "score": float,
  "segment": [start, end]}, ...]}}``. Other top-level keys (``"version"``,
  ``"external_data"``) are ignored.

Numbers (segment bounds, scores) may be JSON numbers or numeric strings
(``"88.6"``), as found in real THUMOS14 files.

Bad-input policy. Everything below raises :class:`EvaluationInputError` (a
``ValueError``) whose message names the file, the video id and the problem:

* a file that is empty, unreadable or not valid JSON;
* a missing key (``"database"``, ``"results"``, ``"annotations"``,
  ``"label"``, ``"segment"``, ``"score"``, or ``"subset"`` when filtering by
  subset) or a value of the wrong type;
* a segment that is not two finite numbers, or whose end < start
  (zero-length segments are accepted);
* a NaN score (NaN has no rank; the reference would silently rank it first).
  Infinite scores are accepted (they sort normally).

The following are *not* errors; they are counted and reported by the
evaluator (see :mod:`stpn_tf.evaluation.detection`):

* ``{"results": {}}`` (no predictions at all): every class scores AP 0;
* predictions whose label is absent from the evaluated ground truth: dropped,
  since no evaluated class can use them;
* predictions for videos without ground truth: kept as false positives, as
  the ActivityNet reference does.

Loaders return pandas DataFrames with columns ``video_id, label, t_start,
t_end`` (plus ``score`` for predictions), rows in file order: the file order
decides how equal scores are ranked, exactly as in the reference code.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import tempfile
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

GROUND_TRUTH_COLUMNS = ("video_id", "label", "t_start", "t_end")
PREDICTION_COLUMNS = ("video_id", "label", "t_start", "t_end", "score")

PathLike = Union[str, os.PathLike]


class EvaluationInputError(ValueError):
  """Malformed or inconsistent evaluation input (ground truth or predictions)."""


def _where(source: str, video_id: Optional[str] = None,
           item: Optional[str] = None) -> str:
  """Builds the 'file: video X: item N' prefix of an error message."""
  parts = [str(source)]
  if video_id is not None:
    parts.append(f"video {video_id!r}")
  if item is not None:
    parts.append(item)
  return ": ".join(parts)


class _JsonObject(dict):
  """A JSON object that remembers the keys it saw more than once (json.loads silently keeps the last)."""
  duplicates: Dict[str, int]


def _object_with_duplicates(pairs) -> "_JsonObject":
  obj = _JsonObject()
  obj.duplicates = {}
  for key, value in pairs:
    if key in obj:
      obj.duplicates[key] = obj.duplicates.get(key, 1) + 1
    obj[key] = value
  return obj


def _refuse_duplicate_videos(mapping: Any, path: PathLike, what: str) -> None:
  """A video listed twice would be silently reduced to its last entry: refuse it, naming the video(s)."""
  duplicates = getattr(mapping, "duplicates", None)
  if duplicates:
    listed = ", ".join(f"{vid!r} ({n} times)" for vid, n in sorted(duplicates.items()))
    raise EvaluationInputError(f'{path}: video(s) listed more than once in "{what}": {listed}; each video must '
                               "appear once (merge its entries)")


def _read_json(path: PathLike) -> Any:
  """Reads a JSON file, turning every failure into an EvaluationInputError."""
  try:
    with open(path, "r", encoding="utf-8") as f:
      text = f.read()
  except OSError as e:
    raise EvaluationInputError(f"{path}: cannot read file: {e}") from e
  if not text.strip():
    raise EvaluationInputError(f"{path}: file is empty (expected JSON)")
  try:
    return json.loads(text, object_pairs_hook=_object_with_duplicates)
  except json.JSONDecodeError as e:
    raise EvaluationInputError(f"{path}: malformed JSON: {e}") from e


def _to_float(value: Any, where: str, what: str) -> float:
  """Converts a JSON number or numeric string to float, or raises."""
  # bool is an int subclass; True as a segment bound is surely a bug.
  if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
    raise EvaluationInputError(f"{where}: {what} must be a number, got {value!r}")
  try:
    return float(value)
  except ValueError:
    raise EvaluationInputError(
        f"{where}: {what} must be a number, got {value!r}") from None


def _parse_segment(entry: Mapping[str, Any], where: str) -> tuple:
  """Returns (start, end) of entry['segment'], validated."""
  if "segment" not in entry:
    raise EvaluationInputError(f'{where}: missing key "segment"')
  segment = entry["segment"]
  if isinstance(segment, (str, bytes)) or not isinstance(segment, Sequence) \
      or len(segment) != 2:
    raise EvaluationInputError(
        f'{where}: "segment" must be [start, end], got {segment!r}')
  start = _to_float(segment[0], where, "segment start")
  end = _to_float(segment[1], where, "segment end")
  if not (math.isfinite(start) and math.isfinite(end)):
    raise EvaluationInputError(f"{where}: segment {segment!r} is not finite")
  if end < start:
    raise EvaluationInputError(
        f"{where}: segment end {end} < start {start}")
  return start, end


def _parse_label(entry: Mapping[str, Any], where: str) -> str:
  if "label" not in entry:
    raise EvaluationInputError(f'{where}: missing key "label"')
  label = entry["label"]
  if not isinstance(label, str):
    raise EvaluationInputError(f'{where}: "label" must be a string, got {label!r}')
  return label


def load_ground_truth(path: PathLike,
                      subset: Optional[str] = None) -> pd.DataFrame:
  """Loads ActivityNet-format ground truth.

  Args:
    path: JSON file with a top-level ``"database"`` mapping.
    subset: keep only videos whose ``"subset"`` equals this (e.g. ``"test"``);
      None keeps every video.

  Returns:
    DataFrame with columns video_id (str), label (str), t_start, t_end
    (float64), one row per annotation, in file order. Videos of the subset
    with an empty annotation list contribute no row.

  Raises:
    EvaluationInputError: unreadable/malformed file, missing key, bad segment.
  """
  data = _read_json(path)
  if not isinstance(data, Mapping) or "database" not in data:
    raise EvaluationInputError(f'{path}: missing top-level key "database"')
  database = data["database"]
  if not isinstance(database, Mapping):
    raise EvaluationInputError(f'{path}: "database" must be an object')
  _refuse_duplicate_videos(database, path, "database")
  video_ids, labels, starts, ends = [], [], [], []
  for video_id, video in database.items():
    if not isinstance(video, Mapping):
      raise EvaluationInputError(
          f"{_where(path, video_id)}: entry must be an object")
    if subset is not None:
      if "subset" not in video:
        raise EvaluationInputError(
            f'{_where(path, video_id)}: missing key "subset" '
            f"(needed to filter subset={subset!r})")
      if video["subset"] != subset:
        continue
    if "annotations" not in video:
      raise EvaluationInputError(
          f'{_where(path, video_id)}: missing key "annotations"')
    annotations = video["annotations"]
    if not isinstance(annotations, Sequence) or isinstance(annotations, str):
      raise EvaluationInputError(
          f'{_where(path, video_id)}: "annotations" must be a list')
    for i, annotation in enumerate(annotations):
      where = _where(path, video_id, f"annotation {i}")
      if not isinstance(annotation, Mapping):
        raise EvaluationInputError(f"{where}: must be an object")
      labels.append(_parse_label(annotation, where))
      start, end = _parse_segment(annotation, where)
      starts.append(start)
      ends.append(end)
      video_ids.append(str(video_id))
  return pd.DataFrame({
      "video_id": pd.Series(video_ids, dtype=object),
      "label": pd.Series(labels, dtype=object),
      "t_start": np.asarray(starts, dtype=np.float64),
      "t_end": np.asarray(ends, dtype=np.float64),
  })


def load_predictions(path: PathLike) -> pd.DataFrame:
  """Loads ActivityNet-format detections.

  Args:
    path: JSON file with a top-level ``"results"`` mapping video id -> list of
      ``{"label", "score", "segment"}``.

  Returns:
    DataFrame with columns video_id, label, t_start, t_end, score (float64),
    one row per detection, in file order (this order breaks score ties, as in
    the reference). ``{"results": {}}`` gives an empty DataFrame.

  Raises:
    EvaluationInputError: unreadable/empty/malformed file, missing key, bad
      segment, NaN or non-numeric score.
  """
  data = _read_json(path)
  if not isinstance(data, Mapping) or "results" not in data:
    raise EvaluationInputError(f'{path}: missing top-level key "results"')
  results = data["results"]
  if not isinstance(results, Mapping):
    raise EvaluationInputError(f'{path}: "results" must be an object')
  _refuse_duplicate_videos(results, path, "results")
  video_ids, labels, starts, ends, scores = [], [], [], [], []
  for video_id, detections in results.items():
    if not isinstance(detections, Sequence) or isinstance(detections, str):
      raise EvaluationInputError(
          f"{_where(path, video_id)}: detections must be a list")
    for i, detection in enumerate(detections):
      where = _where(path, video_id, f"detection {i}")
      if not isinstance(detection, Mapping):
        raise EvaluationInputError(f"{where}: must be an object")
      labels.append(_parse_label(detection, where))
      start, end = _parse_segment(detection, where)
      if "score" not in detection:
        raise EvaluationInputError(f'{where}: missing key "score"')
      score = _to_float(detection["score"], where, "score")
      if math.isnan(score):
        raise EvaluationInputError(f"{where}: score is NaN")
      starts.append(start)
      ends.append(end)
      scores.append(score)
      video_ids.append(str(video_id))
  return pd.DataFrame({
      "video_id": pd.Series(video_ids, dtype=object),
      "label": pd.Series(labels, dtype=object),
      "t_start": np.asarray(starts, dtype=np.float64),
      "t_end": np.asarray(ends, dtype=np.float64),
      "score": np.asarray(scores, dtype=np.float64),
  })


def parse_video_list(value: Optional[Union[str, Iterable[str]]]) -> list:
  """Parses a video-id list: an iterable, a comma list, or a file path.

  Args:
    value: None/'' (no videos), an iterable of ids, a string naming an
      existing file (ids separated by newlines, commas or whitespace; text
      after '#' on a line is a comment), or a comma-separated string of ids.

  Returns:
    List of unique video ids, in first-seen order.

  Raises:
    EvaluationInputError: the file exists but cannot be read, or an item looks like a file path (has a path
      separator or a file extension such as ".txt") but is no file: a mistyped path would otherwise be read as
      a video id and exclude nothing.
  """
  if value is None:
    return []
  if isinstance(value, (str, os.PathLike)):
    text = os.fspath(value)
    if not text:
      return []
    if os.path.isfile(text):
      try:
        with open(text, "r", encoding="utf-8") as f:
          lines = [line.split("#", 1)[0] for line in f]
      except OSError as e:
        raise EvaluationInputError(f"{text}: cannot read video list: {e}") from e
      items = " ".join(lines).replace(",", " ").split()
    else:
      items = [s.strip() for s in text.split(",")]
      for item in items:
        if _looks_like_path(item):
          what = "is a directory, not a file" if os.path.isdir(item) else "does not exist"
          raise EvaluationInputError(
              f"video list {item!r} looks like a file path but {what}; pass an existing file with one id per "
              "line, or comma-separated video ids")
  else:
    items = [str(s).strip() for s in value]
  return list(dict.fromkeys(s for s in items if s))


# A file extension: a dot then 1-5 alphanumerics starting with a letter (".txt", ".json", ".lst"). Video ids of
# THUMOS14 / ActivityNet ("video_test_0000004", "v_-zHX3Gdx6I4") have none.
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")


def _looks_like_path(item: str) -> bool:
  return "/" in item or os.sep in item or bool(_EXTENSION.search(item))


def write_json_atomic(path: PathLike, obj: Any, indent: Optional[int] = None) -> None:
  """Writes obj as JSON to path atomically (temp file in the folder + replace).

  Readers never see a half-written file: the data go to a temporary file in
  the same folder (same filesystem, so os.replace is atomic), which then
  replaces ``path``.

  Args:
    path: destination file; its folder must exist.
    obj: JSON-serializable object. NaN/inf are refused (not valid JSON).
    indent: passed to json.dump.

  Raises:
    ValueError: obj contains NaN or infinity.
    OSError: the folder is not writable.
  """
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                             suffix=".tmp", dir=folder)
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      json.dump(obj, f, indent=indent, allow_nan=False)
      f.flush()
      os.fsync(f.fileno())
    # mkstemp creates 0600; results are meant to be read by others, like a plainly written file.
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
  except BaseException:
    # Never leave the temporary file behind, whatever failed.
    try:
      os.unlink(tmp)
    except OSError:
      pass
    raise


def _detection_to_json(detection: Any, video_id: str) -> dict:
  """Normalizes one detection (dict or (label, score, start, end)) to JSON."""
  if isinstance(detection, Mapping):
    label = detection["label"]
    score = detection["score"]
    if "segment" in detection:
      start, end = detection["segment"]
    else:
      start, end = detection["t_start"], detection["t_end"]
  else:
    label, score, start, end = detection
  score, start, end = float(score), float(start), float(end)
  if math.isnan(score) or not (math.isfinite(start) and math.isfinite(end)) \
      or end < start:
    raise EvaluationInputError(
        f"video {video_id!r}: bad detection {label!r} score={score} "
        f"segment=[{start}, {end}]")
  return {"label": str(label), "score": score, "segment": [start, end]}


def write_predictions_json(path: PathLike,
                           detections_by_video: Union[Mapping[str, Iterable[Any]],
                                                      pd.DataFrame]) -> None:
  """Writes detections in the ActivityNet results format, atomically.

  Args:
    path: output JSON path.
    detections_by_video: either a mapping video_id -> iterable of detections,
      each a dict ``{"label", "score", "segment": [s, e]}`` (or with
      ``"t_start"``/``"t_end"`` instead of ``"segment"``) or a tuple
      ``(label, score, t_start, t_end)``; or a predictions DataFrame with
      the columns of :func:`load_predictions`. Videos with no detection are
      written with an empty list (mapping input only).

  Raises:
    EvaluationInputError: a detection with NaN score, non-finite bounds or
      end < start.
  """
  if isinstance(detections_by_video, pd.DataFrame):
    df = detections_by_video
    missing = set(PREDICTION_COLUMNS) - set(df.columns)
    if missing:
      raise EvaluationInputError(f"predictions DataFrame lacks columns {sorted(missing)}")
    grouped = {}
    for row in df.itertuples(index=False):
      grouped.setdefault(str(row.video_id), []).append(
          (row.label, row.score, row.t_start, row.t_end))
    detections_by_video = grouped
  results = {
      str(video_id): [_detection_to_json(d, str(video_id)) for d in detections]
      for video_id, detections in detections_by_video.items()
  }
  write_json_atomic(path, {"version": "VERSION 1.3", "results": results,
                           "external_data": {}})
