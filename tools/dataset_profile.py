r"""Prints the realism profile of a dataset in our format (see stpn_tf/data/profile.py) and optionally writes it.

  python tools/dataset_profile.py --data_dir=DIR [--output_json=PATH] [--seed=0]

Per stream (rgb, flow, both): feature marginals, the mean cosine between segments of different videos, a supervised
per-segment linear probe (action-vs-background AUC, per-frame mAP) and a video-level linear probe (classification
mAP). Works on the built-in synthetic data and on converted real features alike.
"""

import json
import os
import sys
import uuid

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from stpn_tf.data import profile  # noqa: E402
from stpn_tf.data import schema  # noqa: E402

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Dataset directory (manifest.json + shards).", required=True)
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Also write the profile here as JSON.")
_TRAIN_SPLIT = flags.DEFINE_string("train_split", "train", "Split the probes train on.")
_TEST_SPLIT = flags.DEFINE_string("test_split", "test", "Split the probes are scored on.")
_SEED = flags.DEFINE_integer("seed", 0, "Seeds the segment samples, pairs and minibatch order.")


def _write_json(path, payload):
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  tmp = os.path.join(directory, f".tmp-{uuid.uuid4().hex[:8]}-{os.path.basename(path)}")
  with open(tmp, "w") as f:
    json.dump(payload, f, indent=1, allow_nan=False)
  os.replace(tmp, path)   # atomic: a reader never sees a half-written file


def main(argv):
  del argv
  if _TRAIN_SPLIT.value == _TEST_SPLIT.value:
    raise app.UsageError(f"--train_split and --test_split must differ (both {_TRAIN_SPLIT.value!r})")
  try:
    result = profile.profile_dataset(_DATA_DIR.value, train_split=_TRAIN_SPLIT.value, test_split=_TEST_SPLIT.value,
                                     seed=_SEED.value)
  except schema.DataFormatError as e:
    sys.exit(f"error: {e}")
  print(profile.format_profile(result))
  if _OUTPUT_JSON.value:
    _write_json(_OUTPUT_JSON.value, result)
    print(f"wrote {_OUTPUT_JSON.value}")


if __name__ == "__main__":
  app.run(main)
