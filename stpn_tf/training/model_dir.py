"""What a training run keeps in its model directory besides checkpoints: the writer's lock, run_info.json (which
model), data.json (which data), and the clean-up of temporaries a killed process left behind.

* Lock (`train.lock`): one training process writes a model directory at a time. The lock file holds the owner's
  pid and host; it is created with an atomic hard link of a complete temporary file, so it is never seen half
  written. A lock whose owner is a dead process on this host is stale and taken over; a live owner, or an owner
  on another host (whose liveness cannot be checked from here), refuses the second writer with ModelDirLockedError
  naming it. Only local directories are locked (tf.io.gfile has no exclusive create for gs:// and the like).
* data.json: the data a run trained on (directory, class names, feature rate, feature dims), so that evaluate and
  export use that data by default and refuse a --data_dir with other classes instead of silently scoring (or
  labelling) with the built-in dataset.
"""

import contextlib
import json
import os
import re
import socket
import time
from typing import Dict, Iterator, Optional, Sequence, Tuple

from absl import logging
import tensorflow as tf

from stpn_tf.data import schema

LOCK_NAME = "train.lock"
RUN_INFO = "run_info.json"
DATA_RECORD = "data.json"

# CheckpointManager.save writes ckpt-N_temp/ and renames it when complete; a kill in between leaves it.
_CHECKPOINT_TEMP = re.compile(r"^ckpt-\d+_temp$")
# trainer._write_text_atomic's temporaries: NAME.tmp-PID.
_TEXT_TEMP = re.compile(r"^.+\.tmp-\d+$")

_HELD_LOCKS = set()   # lock paths this process holds (a second train_eval in the same process is a second writer)


class ModelDirError(ValueError):
  """The model directory cannot be used (not writable, locked, or holds another model's checkpoints)."""


class ModelDirLockedError(ModelDirError):
  """Another training process writes this model directory."""


def _is_local(path: str) -> bool:
  return "://" not in path or path.startswith("file://")


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:   # exists, owned by another user
    return True
  return True


def _read_lock(path: str) -> Optional[Dict]:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError):
    return {}   # unreadable: treated as stale below (the link makes a half-written lock impossible)


@contextlib.contextmanager
def exclusive_lock(model_dir: str) -> Iterator[None]:
  """Holds model_dir/train.lock for the duration of the block.

  Raises:
    ModelDirLockedError: another live process (or one on another host) holds the lock.
  """
  if not _is_local(model_dir):
    logging.info("%s is not a local directory: not locked against a second training process", model_dir)
    yield
    return
  path = os.path.abspath(os.path.join(model_dir, LOCK_NAME))
  if path in _HELD_LOCKS:
    raise ModelDirLockedError(f"{model_dir} is being trained by this process already ({path})")
  host = socket.gethostname()
  owner = {"pid": os.getpid(), "host": host, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(owner, f)
  try:
    for _ in range(3):
      try:
        os.link(tmp, path)   # atomic: fails if the lock exists
        break
      except FileExistsError:
        held = _read_lock(path)
        if held is None:
          continue   # released meanwhile
        pid, other_host = held.get("pid"), held.get("host")
        stale = not held or (other_host == host and isinstance(pid, int) and
                             (not _pid_alive(pid) or pid == os.getpid()))
        if not stale:
          where = "this host" if other_host == host else f"host {other_host}"
          raise ModelDirLockedError(
              f"{model_dir} is being trained by process {pid} on {where} (since {held.get('started')}; lock file "
              f"{path}). Two trainings on one model directory overwrite each other's checkpoints: wait for it, use "
              f"another --model_dir, or delete {path} if that process is gone.")
        logging.warning("Removing the stale lock %s of process %s on %s (no longer running)", path, pid, other_host)
        with contextlib.suppress(FileNotFoundError):
          os.remove(path)
    else:
      raise ModelDirLockedError(f"could not take the lock {path}: it keeps changing hands")
  finally:
    os.remove(tmp)
  _HELD_LOCKS.add(path)
  try:
    yield
  finally:
    _HELD_LOCKS.discard(path)
    with contextlib.suppress(FileNotFoundError):
      if (_read_lock(path) or {}).get("pid") == os.getpid():
        os.remove(path)


def clean_stale_temporaries(model_dir: str) -> None:
  """Removes what a killed save left: ckpt-N_temp/ folders and NAME.tmp-PID files. Call with the lock held."""
  if not tf.io.gfile.isdir(model_dir):
    return
  for name in tf.io.gfile.listdir(model_dir):
    name = name.rstrip("/")
    path = os.path.join(model_dir, name)
    if _CHECKPOINT_TEMP.match(name) and tf.io.gfile.isdir(path):
      logging.warning("Removing %s, left by a checkpoint save that did not finish", path)
      tf.io.gfile.rmtree(path)
    elif _TEXT_TEMP.match(name) and not tf.io.gfile.isdir(path):
      logging.info("Removing %s, left by an interrupted write", path)
      tf.io.gfile.remove(path)


def read_json(path: str, what: str) -> Optional[Dict]:
  """The JSON object in path, None when the file does not exist.

  Raises:
    ModelDirError: the file exists but is empty, truncated or not JSON (the message names it).
  """
  if not tf.io.gfile.exists(path):
    return None
  try:
    with tf.io.gfile.GFile(path) as f:
      text = f.read()
    value = json.loads(text)
  except (OSError, tf.errors.OpError, ValueError) as e:
    raise ModelDirError(f"{path} ({what}) is unreadable: {e}. It was written by an older or interrupted run; "
                        "remove it only if you know which run the directory holds.") from e
  if not isinstance(value, dict):
    raise ModelDirError(f"{path} ({what}) is not a JSON object")
  return value


def write_json_atomic(path: str, value: Dict) -> None:
  """Writes JSON to a temporary sibling, then renames it: never an empty or half-written file."""
  tmp = f"{path}.tmp-{os.getpid()}"
  with tf.io.gfile.GFile(tmp, "w") as f:
    f.write(json.dumps(value, indent=1))
  tf.io.gfile.rename(tmp, path, overwrite=True)


def data_record(data_dir: str, manifest: schema.Manifest, extra_train_dirs: Sequence[str] = ()) -> Dict:
  return {"data_dir": os.path.abspath(data_dir) if _is_local(data_dir) else data_dir,
          "class_names": list(manifest.class_names), "feature_rate": float(manifest.feature_rate),
          "feature_dims": dict(manifest.feature_dims), "extra_train_dirs": list(extra_train_dirs)}


def record_data(model_dir: str, data_dir: str, manifest: schema.Manifest, extra_train_dirs: Sequence[str] = ()
                ) -> None:
  """Writes model_dir/data.json; refuses data whose classes differ from what the run trained on so far."""
  path = os.path.join(model_dir, DATA_RECORD)
  existing = read_json(path, "the data this run trained on")
  if existing is not None and existing.get("class_names") != list(manifest.class_names):
    raise ModelDirError(
        f"{model_dir} was trained on {existing.get('data_dir')} with classes {existing.get('class_names')}; "
        f"{data_dir} has classes {list(manifest.class_names)}. Resume with the same data or use another "
        "--model_dir.")
  write_json_atomic(path, data_record(data_dir, manifest, extra_train_dirs))


def resolve_data_dir(model_dir: str, data_dir: Optional[str]) -> Tuple[str, Optional[Dict]]:
  """The data to evaluate or export a run with: --data_dir if given (its classes checked against the run's),
  else the data the run recorded in data.json.

  Returns:
    (data_dir, the run's data record or None for runs trained before data.json existed).

  Raises:
    ModelDirError: no --data_dir and no record, a recorded directory that is gone, or other classes or another
      feature rate than the run's.
  """
  path = os.path.join(model_dir, DATA_RECORD)
  record = read_json(path, "the data this run trained on")
  if data_dir is None:
    if record is None and not tf.train.latest_checkpoint(model_dir):
      raise ModelDirError(f"{model_dir} holds no checkpoint (no training run there)")
    if record is None:
      raise ModelDirError(f"{model_dir} does not record the data it was trained on (no {DATA_RECORD}: trained "
                          "by an older version); pass --data_dir")
    data_dir = record["data_dir"]
    if not tf.io.gfile.exists(os.path.join(data_dir, schema.MANIFEST_NAME)):
      raise ModelDirError(f"{model_dir} was trained on {data_dir}, which no longer holds a dataset; pass "
                          "--data_dir (a dataset with the same classes)")
    return data_dir, record
  if record is not None:
    manifest = schema.read_manifest(data_dir)
    if list(manifest.class_names) != record.get("class_names"):
      raise ModelDirError(
          f"{data_dir} does not match the run in {model_dir}: its classes are {list(manifest.class_names)}, the "
          f"run was trained on {record.get('data_dir')} with classes {record.get('class_names')} (its outputs "
          "would be read with the wrong class names). Pass a --data_dir with the run's classes, or none: the "
          "recorded one is used.")
    recorded_rate = record.get("feature_rate")
    if recorded_rate is not None and abs(float(manifest.feature_rate) - float(recorded_rate)) > 1e-9:
      raise ModelDirError(
          f"{data_dir} does not match the run in {model_dir}: its feature rate is {manifest.feature_rate}/s, the "
          f"run was trained on {record.get('data_dir')} at {recorded_rate}/s (detections would be placed at the "
          "wrong times)")
  return data_dir, record
