"""stpn_tf: weakly-supervised temporal action localization (STPN and its successors) in TensorFlow/Keras."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) hides the progress lines; users can override.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
