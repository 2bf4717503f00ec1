r"""Converts a public I3D feature release into the project's TFRecord dataset (see stpn_tf/data/converters.py).

  # W-TALC release (THUMOS14; 25/16 features/s by default for THUMOS14 file names)
  python tools/convert_features.py --format=wtalc --features=Thumos14reduced-I3D-JOINTFeatures.npy \
      --annotations=Thumos14reduced-Annotations --output_dir=data/thumos14

  # W-TALC layout for ActivityNet 1.2 / 1.3: --feature_rate is required (1.5625 for 25 fps / 16-frame chunks)
  python tools/convert_features.py --format=wtalc --features=ActivityNet1.2-I3D-JOINTFeatures.npy \
      --annotations=ActivityNet1.2-Annotations --feature_rate=1.5625 --output_dir=data/anet12

  # One .npy per video (DIR/rgb/<vid>.npy + DIR/flow/<vid>.npy, or DIR/<vid>.npy joint) + ActivityNet JSON
  python tools/convert_features.py --format=per_video --features_dir=DIR --ground_truth=GT.json \
      --feature_rate=1.5625 --output_dir=OUT

  # HDF5 (a group per video with rgb/flow datasets, or a joint dataset per video), read with tensorflow-io
  python tools/convert_features.py --format=hdf5 --features=FILE.h5 --ground_truth=GT.json \
      --feature_rate=1.5625 --output_dir=OUT

Common flags: --overwrite, --on_error={fail,skip}, --strict, --segment_tolerance (s), --subset_map=SUBSET:SPLIT,...,
--class_list=FILE, --stream_dim. OUT gets the dataset (manifest.json last), ground_truth.json (evaluation
split, ready for `python -m stpn_tf.evaluate --ground_truth=OUT/ground_truth.json`), ambiguous.json (THUMOS14)
and conversion_report.json. Paths may be local or on any tf.io.gfile / tensorflow-io file system.
Exit status 1 with a message naming the video(s) on bad input in fail mode. Ground truth is kept as given:
instances past the end of a video are warnings (listed in conversion_report.json, counted in the summary);
--strict makes them problems.
"""

import sys

from absl import app
from absl import flags
from absl import logging

_FORMAT = flags.DEFINE_enum("format", None, ["wtalc", "per_video", "hdf5"], "Input format.", required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Dataset directory to create.", required=True)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace what an earlier conversion wrote in --output_dir.")
_ON_ERROR = flags.DEFINE_enum("on_error", "fail", ["fail", "skip"],
                              "fail: stop at bad input (every annotation problem is listed first); skip: leave bad "
                              "videos out and list them in the summary and conversion_report.json.")
_STRICT = flags.DEFINE_bool("strict", False, "Treat ground-truth instances past the end of the video (or before 0 s) "
                             "as problems (fail / skip) instead of keeping them as given with a warning.")
_FEATURE_RATE = flags.DEFINE_float("feature_rate", None, "Features per second. Default: 25/16 when a path names "
                                   "THUMOS14; required otherwise (1.5625 for 16-frame chunks of 25 fps video).")
_FEATURES = flags.DEFINE_string("features", None, "wtalc: the *-JOINTFeatures.npy file; hdf5: the .h5 file.")
_ANNOTATIONS = flags.DEFINE_string("annotations", None, "wtalc: the *-Annotations folder.")
_FEATURES_DIR = flags.DEFINE_string("features_dir", None, "per_video: the feature folder.")
_GROUND_TRUTH = flags.DEFINE_string("ground_truth", None, "per_video / hdf5: ActivityNet-format ground-truth JSON.")
_LAYOUT = flags.DEFINE_enum("layout", "auto", ["auto", "separate", "joint"],
                            "per_video: separate rgb/ and flow/ folders, or joint files (auto: by folder).")
_CLASS_LIST = flags.DEFINE_string("class_list", None, "Class names (one per line, or a JSON list). Default: the "
                                  "release's classlist.npy (wtalc) or the sorted labels of --ground_truth.")
_SUBSET_MAP = flags.DEFINE_string("subset_map", None, "SUBSET:SPLIT,... Default: validation:train,test:test "
                                  "(THUMOS14), or training:train,validation:test when a 'training' subset exists.")
_SEGMENT_TOLERANCE = flags.DEFINE_float("segment_tolerance", 1.0, "Seconds a ground-truth segment may reach past "
                                        "max(duration, T / feature_rate); 'inf' disables the check.")
_STREAM_DIM = flags.DEFINE_integer("stream_dim", 1024, "Feature dimension of each stream (joint arrays: twice).")
_ID_PREFIX = flags.DEFINE_string("id_prefix", "", "per_video / hdf5: prefix stripped from feature names before "
                                 "matching video ids (e.g. 'v_').")
_AMBIGUOUS = flags.DEFINE_string("ambiguous", None, "per_video / hdf5: THUMOS14 Ambiguous_test.txt to copy into "
                                 "ambiguous.json (wtalc reads it from --annotations).")
_VIDEOS_PER_SHARD = flags.DEFINE_integer("videos_per_shard", 64, "Videos per TFRecord shard.")
_LOG_EVERY = flags.DEFINE_integer("log_every", 50, "Log progress every this many videos.")


def _require(**values):
  missing = [f"--{name}" for name, value in values.items() if not value]
  if missing:
    raise app.UsageError(f"--format={_FORMAT.value} needs {' and '.join(missing)}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # Imported here so that --help stays fast.
  from stpn_tf.data import converters  # pylint: disable=import-outside-toplevel
  from stpn_tf.data import schema  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.INFO)
  try:
    options = converters.ConversionOptions(
        on_error=_ON_ERROR.value, strict=_STRICT.value, overwrite=_OVERWRITE.value,
        segment_tolerance=_SEGMENT_TOLERANCE.value,
        stream_dim=_STREAM_DIM.value, videos_per_shard=_VIDEOS_PER_SHARD.value, log_every=_LOG_EVERY.value,
        subset_map=converters.parse_subset_map(_SUBSET_MAP.value),
        class_names=converters.read_class_list(_CLASS_LIST.value) if _CLASS_LIST.value else None)
  except (ValueError, OSError) as e:
    raise app.UsageError(str(e)) from e
  try:
    if _FORMAT.value == "wtalc":
      _require(features=_FEATURES.value, annotations=_ANNOTATIONS.value)
      report = converters.convert_wtalc(_FEATURES.value, _ANNOTATIONS.value, _OUTPUT_DIR.value,
                                        _FEATURE_RATE.value, options)
    elif _FORMAT.value == "per_video":
      _require(features_dir=_FEATURES_DIR.value, ground_truth=_GROUND_TRUTH.value)
      report = converters.convert_per_video(_FEATURES_DIR.value, _GROUND_TRUTH.value, _OUTPUT_DIR.value,
                                            _FEATURE_RATE.value, options, layout=_LAYOUT.value,
                                            id_prefix=_ID_PREFIX.value, ambiguous_path=_AMBIGUOUS.value)
    else:
      _require(features=_FEATURES.value, ground_truth=_GROUND_TRUTH.value)
      report = converters.convert_hdf5(_FEATURES.value, _GROUND_TRUTH.value, _OUTPUT_DIR.value,
                                       _FEATURE_RATE.value, options, id_prefix=_ID_PREFIX.value,
                                       ambiguous_path=_AMBIGUOUS.value)
  except (schema.DataFormatError, FileExistsError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(report.summary())
  return 0


if __name__ == "__main__":
  app.run(main)
