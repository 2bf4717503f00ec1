r"""Trains a model and evaluates it on the test split.

  python -m stpn_tf.train --gin_file=stpn.gin [--data_dir=DIR] [--model_dir=DIR] [--num_steps=N]

Flags say only where and how long; every hyperparameter is a gin binding (gin_configs/*.gin, --gin_param).
Without --data_dir the built-in synthetic THUMOS14-like dataset is used (generated on first use); without
--model_dir runs go to $STPN_TF_CACHE/runs/<gin file name> (default ~/.cache/stpn_tf/runs/...). Rerunning the
same command resumes from the last checkpoint; --num_steps=0 only evaluates the last checkpoint. One training
process writes a model directory at a time (DIR/train.lock). Mistakes (a gin typo, a missing folder, ...) print one
"train: error:" line; --verbosity=1 shows the traceback.
"""

from absl import app
from absl import flags
from absl import logging

from stpn_tf import common_flags
from stpn_tf import config
from stpn_tf import user_errors
from stpn_tf.training import distribute
from stpn_tf.training import trainer

_GIN_FILE = common_flags.GIN_FILE
_GIN_PARAM = common_flags.GIN_PARAM
_NUM_STEPS = flags.DEFINE_integer("num_steps", None, "total training steps; default from the gin config.")
_STRATEGY = flags.DEFINE_enum("strategy", "default", distribute.STRATEGIES, "tf.distribute strategy.")
_TPU = flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")


def main(argv):
  del argv
  config.parse_gin(_GIN_FILE.value, _GIN_PARAM.value)
  strategy = distribute.get_strategy(_STRATEGY.value, _TPU.value)
  data_dir = common_flags.DATA_DIR.value or config.builtin_dataset()
  model_dir = common_flags.MODEL_DIR.value or config.default_model_dir(_GIN_FILE.value)
  logging.info("data_dir %s\nmodel_dir %s", data_dir, model_dir)
  trainer.train_eval(model_dir, data_dir, _NUM_STEPS.value, strategy)


if __name__ == "__main__":
  app.run(user_errors.reporting("train", main))   # user errors: one "train: error:" line, no traceback
