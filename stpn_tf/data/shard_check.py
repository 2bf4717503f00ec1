"""Which TFRecord shard is corrupt: a CRC pass over a split's shards.

tf.data reports a bad record as `DataLossError: corrupted record at 6159508` with no file name (the files of a
split are interleaved). `check_split` reads every record of a split once (TFRecordDataset verifies each record's
length and data CRCs) and names the shards that fail; the trainer runs it on the test split before training when
the final evaluation will read it, and on the training split when training hits a DataLossError.
"""

import re
import time
from typing import List, Sequence, Tuple

from absl import logging
import tensorflow as tf

from stpn_tf.data import schema

_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[\[\{\{node [^]]*\]\]|\s*\[Op:\w+\]( name: \S*)?")


class CorruptShardError(schema.DataFormatError):
  """A TFRecord shard fails its CRC check or is truncated."""


def _clean(message: str) -> str:
  return _TF_NOISE.sub("", message).strip()


@tf.autograph.experimental.do_not_convert
def _count(count, record):
  del record
  return count + 1


def corrupt_shards(paths: Sequence[str]) -> List[Tuple[str, str]]:
  """(path, what is wrong) for each shard that cannot be read to its end."""
  bad = []
  for path in paths:
    try:
      tf.data.TFRecordDataset(path).reduce(tf.constant(0, tf.int64), _count)
    except (tf.errors.DataLossError, tf.errors.NotFoundError, tf.errors.OutOfRangeError) as e:
      bad.append((path, _clean(e.message)))
  return bad


def _error(data_dir: str, split: str, bad: Sequence[Tuple[str, str]], cause: str = "") -> CorruptShardError:
  shards = "; ".join(f"{path}: {what}" for path, what in bad)
  return CorruptShardError(f"corrupt TFRecord shard(s) in split {split!r} of {data_dir}{cause}: {shards}. "
                           "Copy or convert the dataset again.")


def check_split(data_dir: str, split: str) -> None:
  """Reads every record of a split once; raises CorruptShardError naming the bad shards."""
  start = time.perf_counter()
  bad = corrupt_shards(schema.read_manifest(data_dir).shard_paths(data_dir, split))
  if bad:
    raise _error(data_dir, split, bad)
  logging.info("Checked the %s shards of %s (CRC) in %.1f s", split, data_dir, time.perf_counter() - start)


def name_corrupt_shard(data_dirs: Sequence[str], split: str, error: tf.errors.OpError) -> Exception:
  """The error to raise for a DataLossError met while reading `split` of data_dirs: one naming the shard(s)
  found corrupt, or the original error when the CRC pass finds none."""
  for data_dir in data_dirs:
    bad = corrupt_shards(schema.read_manifest(data_dir).shard_paths(data_dir, split))
    if bad:
      return _error(data_dir, split, bad)
  return error
