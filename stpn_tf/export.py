r"""Exports a trained run as a TensorFlow SavedModel for serving.

  python -m stpn_tf.export --model_dir=DIR --export_dir=OUT [--data_dir=DIR] [--overwrite]

Rebuilds the model from DIR/config.gin, restores its last checkpoint and writes OUT with the signatures `outputs`
(= serving_default), `outputs_batched`, `detect` (in-graph detection with the run's gin-bound post-processing
settings; absent for tasks without one) and `metadata`. Class names and the feature rate come from the dataset
manifest (--data_dir, default the dataset the run trained on, recorded in DIR/data.json; another --data_dir must
have the same classes) and are stored in the export, which is self-contained: load it
with `tf.saved_model.load(OUT)`, no stpn_tf needed. OUT is written to a temporary sibling and renamed when
complete. See stpn_tf/serving/module.py.
"""

from absl import app
from absl import flags

# The flags are defined only when this file runs as the binary (define_flags below): stpn_tf.train and
# stpn_tf.evaluate define --model_dir / --data_dir too, and absl refuses a flag defined twice in one process.
_FLAG_NAMES = ("model_dir", "export_dir", "data_dir", "overwrite")


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string("model_dir", None, "trained run: checkpoints, config.gin, run_info.json.",
                      flag_values=flag_values)
  flags.DEFINE_string("export_dir", None, "where to write the SavedModel (must not exist unless --overwrite).",
                      flag_values=flag_values)
  flags.DEFINE_string("data_dir", None, "dataset with the run's classes (class names, feature rate); default: "
                      "the one the run trained on (DIR/data.json).", flag_values=flag_values)
  flags.DEFINE_bool("overwrite", False, "replace an existing --export_dir.", flag_values=flag_values)


def main(argv, flag_values: flags.FlagValues = flags.FLAGS):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  values = {name: flag_values[name].value for name in _FLAG_NAMES}
  if not values["model_dir"] or not values["export_dir"]:
    raise app.UsageError("--model_dir and --export_dir are required")
  from stpn_tf.serving import module  # pylint: disable=import-outside-toplevel
  try:
    module.export_saved_model(values["model_dir"], values["export_dir"], values["data_dir"],
                              overwrite=values["overwrite"])
  except module.ExportError as e:
    raise SystemExit(f"export: error: {e}") from e


if __name__ == "__main__":
  define_flags()
  app.run(main)
