"""The optimizer of every network: Adam (every paper implemented here uses it), gin-configurable as
`make_optimizer.*`, with weight decay in either of its two forms (issue 17):

  'decoupled'  Keras' `weight_decay` (the AdamW form): theta <- theta - lr * wd * theta, outside Adam's moments.
  'coupled'    L2 added to the gradient before the moments, g <- g + wd * theta, as torch.optim.Adam(weight_decay=
               wd), e.g. the HAM-Net authors' code.
"""

from typing import Optional

import gin
import keras
import tensorflow as tf

WEIGHT_DECAY_MODES = ("decoupled", "coupled")


@keras.saving.register_keras_serializable(package="stpn_tf")
class CoupledWeightDecayAdam(keras.optimizers.Adam):
  """Adam with L2 weight decay added to the gradient before the moments, as torch.optim.Adam(weight_decay=wd):
  g <- g + wd * theta, then the usual Adam update with g (after any clipping, as torch clips before step()).

  Keras' own `weight_decay` is the decoupled form (AdamW: theta <- theta - lr * wd * theta, outside the moments);
  the two differ as soon as the moments rescale the gradient.
  """

  def __init__(self, *args, l2_weight_decay: float = 0.0, **kwargs):
    if kwargs.get("weight_decay") is not None:
      raise ValueError("CoupledWeightDecayAdam takes l2_weight_decay, not weight_decay (the decoupled form)")
    super().__init__(*args, **kwargs)
    self.l2_weight_decay = float(l2_weight_decay)

  def update_step(self, gradient, variable, learning_rate):
    if self.l2_weight_decay and self._use_weight_decay(variable):
      gradient = gradient + tf.cast(self.l2_weight_decay, variable.dtype) * variable
    return super().update_step(gradient, variable, learning_rate)

  def get_config(self):
    config = super().get_config()
    config["l2_weight_decay"] = self.l2_weight_decay
    return config


@gin.configurable
def make_optimizer(learning_rate: float = 1e-4, weight_decay: Optional[float] = None,
                   weight_decay_mode: str = "decoupled", clipnorm: Optional[float] = None,
                   global_clipnorm: Optional[float] = None) -> keras.optimizers.Optimizer:
  """Adam (every paper implemented here uses it); learning rate from the model's gin file.

  Args:
    learning_rate: Adam's step size.
    weight_decay: None or 0 = none.
    weight_decay_mode: 'decoupled' = Keras' weight_decay (AdamW form, theta -= lr * wd * theta after the step);
      'coupled' = L2 added to the gradient before Adam's moments (torch.optim.Adam(weight_decay=...), e.g. the
      HAM-Net authors' code).
    clipnorm: clip each gradient to this norm (None = no clipping).
    global_clipnorm: clip all gradients of a network together to this global norm (torch's clip_grad_norm_, e.g.
      PyTorch Lightning's gradient_clip_val); applied before the coupled L2 term, as torch clips before step().
  """
  if weight_decay_mode not in WEIGHT_DECAY_MODES:
    raise ValueError(f"make_optimizer.weight_decay_mode must be one of {WEIGHT_DECAY_MODES}, "
                     f"got {weight_decay_mode!r}")
  if weight_decay is not None and not weight_decay >= 0:
    raise ValueError(f"make_optimizer.weight_decay must be None or >= 0, got {weight_decay}")
  if weight_decay_mode == "coupled" and weight_decay:
    return CoupledWeightDecayAdam(learning_rate=learning_rate, l2_weight_decay=weight_decay, clipnorm=clipnorm,
                                  global_clipnorm=global_clipnorm)
  return keras.optimizers.Adam(learning_rate=learning_rate, weight_decay=weight_decay or None, clipnorm=clipnorm,
                               global_clipnorm=global_clipnorm)
