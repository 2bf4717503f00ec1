"""Serving: the exported SavedModel (module.py) and STPN detection inside the TensorFlow graph (tf_postprocess.py)."""
