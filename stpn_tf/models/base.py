"""What the tasks with one network per stream share (STPN, background modeling, AUMN).

A *task* tells the training loop (stpn_tf/training/trainer.py) which networks to build, what each reads from a
batch and its losses, and tells inference how to fuse and localize. These three papers train a separate network per
modality (RGB, flow) with identical settings, each on its own stream of the same batch; HAM-Net (one network over
the concatenated streams) defines its own.
"""

from typing import Callable, Dict, Tuple

import keras
import tensorflow as tf


class PerStreamTask:
  """Base class: one network per modality. Subclasses set `name`, `stream_model_fn` (feature_dim, num_classes,
  name=..., **model_kwargs) -> keras.Model, and in __init__ `self.modalities` and `self.model_kwargs`."""

  name: str = ""
  stream_model_fn: Callable[..., keras.Model]
  modalities: Tuple[str, ...] = ()
  model_kwargs: Dict = {}

  @property
  def networks(self) -> Dict[str, str]:
    """Network name -> the stream it reads: one network per stream, trained separately."""
    return {m: m for m in self.modalities}

  @property
  def streams(self) -> Tuple[str, ...]:
    return self.modalities

  def build_models(self, num_classes: int, feature_dims: Dict[str, int]) -> Dict[str, keras.Model]:
    build = type(self).stream_model_fn
    return {m: build(feature_dims[m], num_classes, name=f"{self.name}_{m}", **self.model_kwargs)
            for m in self.modalities}

  def network_inputs(self, network: str, batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return {"features": batch[network], "mask": batch["mask"]}
