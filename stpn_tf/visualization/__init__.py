"""Pictures a person can check: per-video plots, an HTML evaluation report, images for TensorBoard.

* `video`: per-task extraction of what a plot shows (`VideoPlotData`, `video_plot_data`); NumPy only.
* `plots`: matplotlib figures from plain arrays (`plot_video`, `plot_precision_recall`, `save_figure`).
* `report`: the HTML report of `python -m stpn_tf.evaluate --model_dir=... --report_dir=OUT`.
* `summaries`: `summary_images`, a few per-video plots as uint8 arrays for `tf.summary.image`.

matplotlib is an optional dependency (the "viz" extra). Nothing here imports it at module import time: the
functions that draw call `require_matplotlib()`, which raises `MissingMatplotlibError` with the install hint.
"""

INSTALL_HINT = 'matplotlib is needed to draw pictures; install it with: pip install -e ".[viz]"'


class MissingMatplotlibError(ImportError):
  """matplotlib is not installed; the message says how to install it."""


def require_matplotlib():
  """Returns the matplotlib module, or raises MissingMatplotlibError with the install hint."""
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise MissingMatplotlibError(INSTALL_HINT) from e
  return matplotlib


def matplotlib_available() -> bool:
  """True when matplotlib can be imported (the pictures can be drawn)."""
  try:
    require_matplotlib()
  except MissingMatplotlibError:
    return False
  return True
