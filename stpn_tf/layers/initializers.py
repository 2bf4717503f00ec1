"""Weight-initialization schemes by name, so that a gin file can say which one a model uses.

No paper implemented here states its initialization, and it matters (issue 17: HAM-Net with Keras' Glorot weights
localized worse than the authors' code with its kaiming-uniform weights). A *scheme* names a kernel initializer and
a bias initializer; a task binds `<Task>.kernel_initializer = '<name>'` and `<Task>.bias_initializer = '<name>'`,
taking the kernel part of the first scheme and the bias part of the second:

  name                          kernel                                        bias
  'glorot_uniform'              Glorot uniform, U(+-sqrt(6 / (fan_in +        Glorot uniform on the bias' own
                                fan_out))) (Keras' default kernel)            shape, U(+-sqrt(3 / n))
  'zeros'                       0                                             0 (Keras' default bias)
  'tf1_dense_default'           Glorot uniform (TF1 tf.layers.dense /         0
                                conv1d default kernel_initializer=None)
  'torch_default'               kaiming_uniform_(a=sqrt(5)): U(+-1 /          U(+-1 / sqrt(fan_in)), fan_in of
                                sqrt(fan_in)) (torch nn.Linear / Conv1d       the layer's kernel
                                reset_parameters)
  'kaiming_uniform_leaky_relu'  kaiming_uniform_(mode='fan_in',               0
                                nonlinearity='leaky_relu') with torch's
                                default a = 0, i.e. gain sqrt(2):
                                U(+-sqrt(6 / fan_in)) (HAM-Net authors'
                                utils/utils.py init_weights)

fan_in is the number of inputs of one output unit: D for a Dense kernel [D, U], k * D for a Conv1D kernel [k, D, U]
(Keras' and torch's convention alike). The HAM-Net authors' `init_weights` calls `kaiming_uniform_` without `a`,
so the negative slope used for the gain is 0, not the network's LeakyReLU slope 0.2 (sqrt(2 / (1 + 0.2^2)) would be
1.387 instead of 1.414).
"""

import math
from typing import Callable, Dict, NamedTuple, Optional

import keras


class Scheme(NamedTuple):
  """A named pair: `kernel()` -> Keras initializer, `bias(fan_in)` -> Keras initializer."""
  name: str
  kernel: Callable[[], keras.initializers.Initializer]
  bias: Callable[[Optional[int]], keras.initializers.Initializer]


def _fan_in_uniform_bias(fan_in: Optional[int]) -> keras.initializers.Initializer:
  if fan_in is None or int(fan_in) <= 0:
    raise ValueError(f"the 'torch_default' bias initializer needs the layer's fan_in (> 0), got {fan_in!r}")
  bound = 1.0 / math.sqrt(int(fan_in))
  return keras.initializers.RandomUniform(-bound, bound)


_SCHEMES: Dict[str, Scheme] = {
    "glorot_uniform": Scheme("glorot_uniform", keras.initializers.GlorotUniform,
                             lambda fan_in: keras.initializers.GlorotUniform()),
    "zeros": Scheme("zeros", keras.initializers.Zeros, lambda fan_in: keras.initializers.Zeros()),
    "tf1_dense_default": Scheme("tf1_dense_default", keras.initializers.GlorotUniform,
                                lambda fan_in: keras.initializers.Zeros()),
    # kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in); as a
    # variance scaling: uniform with limit sqrt(3 * scale / fan_in), scale = 1 / 3.
    "torch_default": Scheme("torch_default",
                            lambda: keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
                            _fan_in_uniform_bias),
    # kaiming_uniform_(a=0, nonlinearity='leaky_relu'): gain sqrt(2), bound sqrt(6 / fan_in) = He uniform.
    "kaiming_uniform_leaky_relu": Scheme("kaiming_uniform_leaky_relu",
                                         lambda: keras.initializers.VarianceScaling(2.0, "fan_in", "uniform"),
                                         lambda fan_in: keras.initializers.Zeros()),
}

NAMES = tuple(_SCHEMES)


def get(name: str) -> Scheme:
  """The scheme called `name` (see the module docstring); a ValueError lists the known names."""
  if isinstance(name, Scheme):
    return name
  try:
    return _SCHEMES[str(name)]
  except KeyError:
    raise ValueError(f"unknown initializer {name!r}: choose one of {', '.join(map(repr, NAMES))} "
                     "(gin: <Task>.kernel_initializer / <Task>.bias_initializer)") from None


def kernel(name: str) -> keras.initializers.Initializer:
  """A fresh kernel initializer of scheme `name`."""
  return get(name).kernel()


def bias(name: str, fan_in: Optional[int]) -> keras.initializers.Initializer:
  """A fresh bias initializer of scheme `name` for a layer with `fan_in` inputs per unit."""
  return get(name).bias(fan_in)


def dense(units: int, *, fan_in: int, kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
          **kwargs) -> keras.layers.Dense:
  """A keras Dense layer with the named schemes (fan_in = its input width)."""
  return keras.layers.Dense(units, kernel_initializer=kernel(kernel_initializer),
                            bias_initializer=bias(bias_initializer, fan_in), **kwargs)
