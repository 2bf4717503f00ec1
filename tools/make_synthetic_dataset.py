r"""Writes the built-in synthetic THUMOS14-like dataset (see stpn_tf/data/synthetic.py) and prints its statistics.

  python tools/make_synthetic_dataset.py --output_dir=/tmp/synthetic --preset=thumos14 [--seed=0] [--overwrite]
"""

import sys
import time

from absl import app
from absl import flags

from stpn_tf.data import synthetic

_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Dataset directory to write.", required=True)
_PRESET = flags.DEFINE_enum("preset", "thumos14", sorted(synthetic.PRESETS), "Generator preset.")
_SEED = flags.DEFINE_integer("seed", 0, "Dataset seed; the same seed gives identical data.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a complete dataset already in --output_dir.")


def main(argv):
  del argv
  start = time.time()
  try:
    manifest = synthetic.generate(_OUTPUT_DIR.value, _PRESET.value, seed=_SEED.value, overwrite=_OVERWRITE.value)
  except FileExistsError as e:
    sys.exit(f"error: {e}")
  minutes = (time.time() - start) / 60.0
  print(f"Wrote the synthetic {_PRESET.value!r} dataset (seed {_SEED.value}) to {_OUTPUT_DIR.value} "
        f"in {minutes:.2f} min: {manifest.num_classes} classes, {manifest.feature_rate:.4f} features/s, "
        f"dims {manifest.feature_dims}")
  for split, s in manifest.extra["stats"].items():
    print(f"  {split:5s}: {s['num_videos']} videos, {s['num_segments']} segments, {s['num_instances']} instances "
          f"({s['instances_per_video']:.1f}/video), duration {s['min_duration_s']:.0f}-{s['max_duration_s']:.0f} s "
          f"(mean {s['mean_duration_s']:.0f} s), coverage {100 * s['mean_coverage']:.1f}%, median instance "
          f"{s['median_instance_length_s']:.1f} s, multi-label {100 * s['multi_label_share']:.1f}%")


if __name__ == "__main__":
  app.run(main)
