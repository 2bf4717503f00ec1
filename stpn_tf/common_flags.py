"""Flags shared by the binaries (train, evaluate), defined once: absl refuses a flag defined twice in a process."""

from absl import flags

MODEL_DIR = flags.DEFINE_string("model_dir", None, "the run's directory: checkpoints, config.gin, summaries, results.")
DATA_DIR = flags.DEFINE_string("data_dir", None, "dataset directory; default: the built-in synthetic dataset "
                               "(train), the data the run trained on (evaluate --model_dir).")
GIN_FILE = flags.DEFINE_multi_string("gin_file", [], "gin config files (searched in the cwd, then gin_configs/, e.g. "
                                     "'stpn.gin' or 'cpu/stpn.gin').")
GIN_PARAM = flags.DEFINE_multi_string("gin_param", [], "gin bindings, e.g. 'STPN.sparsity_weight = 0.0'.")
