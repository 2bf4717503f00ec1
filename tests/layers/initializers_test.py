"""Each initialization scheme against its definition (bounds and variance of U(-b, b) = b^2 / 3), and the gin
options `<Task>.kernel_initializer` / `bias_initializer` reaching every layer of STPN, BGM and AUMN."""

import math

import numpy as np
import pytest

from stpn_tf.layers import initializers
from stpn_tf.models import aumn
from stpn_tf.models import bgm
from stpn_tf.models import stpn


def _check_uniform(values, bound):
  values = np.asarray(values, np.float64).ravel()
  assert np.all(np.abs(values) <= bound + 1e-7)
  assert np.abs(values).max() > 0.95 * bound                  # the whole interval is used
  np.testing.assert_allclose(values.var(), bound ** 2 / 3.0, rtol=0.05)
  assert abs(values.mean()) < 0.05 * bound


def test_glorot_uniform_kernel():
  w = initializers.kernel("glorot_uniform")((300, 200))
  _check_uniform(w, math.sqrt(6.0 / (300 + 200)))


def test_tf1_dense_default_is_glorot_kernel_zero_bias():
  w = initializers.kernel("tf1_dense_default")((300, 200))
  _check_uniform(w, math.sqrt(6.0 / 500))
  assert np.all(np.asarray(initializers.bias("tf1_dense_default", 300)((200,))) == 0)


def test_torch_default_dense_and_conv():
  # nn.Linear(300, 200): kaiming_uniform_(a=sqrt(5)) -> bound 1/sqrt(300); bias U(+-1/sqrt(300)).
  _check_uniform(initializers.kernel("torch_default")((300, 200)), 1.0 / math.sqrt(300))
  _check_uniform(initializers.bias("torch_default", 300)((20000,)), 1.0 / math.sqrt(300))
  # nn.Conv1d(64, 128, 3): fan_in = 64 * 3; Keras' Conv1D kernel is [k, D_in, D_out].
  _check_uniform(initializers.kernel("torch_default")((3, 64, 128)), 1.0 / math.sqrt(3 * 64))


def test_torch_default_bias_needs_fan_in():
  with pytest.raises(ValueError, match="fan_in"):
    initializers.bias("torch_default", None)


def test_kaiming_uniform_leaky_relu_matches_torch_formula():
  # torch.nn.init.kaiming_uniform_(w, mode='fan_in', nonlinearity='leaky_relu') with a = 0: gain sqrt(2),
  # bound = gain * sqrt(3 / fan_in) = sqrt(6 / fan_in). Conv1d(2048, 512, 3): fan_in = 6144.
  _check_uniform(initializers.kernel("kaiming_uniform_leaky_relu")((3, 256, 400)), math.sqrt(6.0 / (3 * 256)))
  assert np.all(np.asarray(initializers.bias("kaiming_uniform_leaky_relu", 10)((7,))) == 0)


def test_zeros():
  assert np.all(np.asarray(initializers.kernel("zeros")((4, 3))) == 0)
  assert np.all(np.asarray(initializers.bias("zeros", 4)((3,))) == 0)


def test_unknown_name_lists_choices():
  with pytest.raises(ValueError, match="tf1_dense_default"):
    initializers.get("he_normal_typo")
  with pytest.raises(ValueError, match="unknown initializer"):
    stpn.STPN(kernel_initializer="nope")


def _weights(model):
  return {w.path: np.asarray(w) for w in model.weights}


def test_stpn_wiring_torch_default():
  d, h = 64, 32
  model = stpn.STPN(modalities=("rgb",), hidden_units=h, use_bias=True, kernel_initializer="torch_default",
                    bias_initializer="torch_default").build_models(5, {"rgb": d})["rgb"]
  w = _weights(model)
  fc1_k = next(v for k, v in w.items() if "fc1" in k and "kernel" in k)
  fc1_b = next(v for k, v in w.items() if "fc1" in k and "bias" in k)
  fc2_b = next(v for k, v in w.items() if "fc2" in k and "bias" in k)
  cls_b = next(v for k, v in w.items() if "classifier" in k and "bias" in k)
  assert np.abs(fc1_k).max() <= 1 / math.sqrt(d) + 1e-7 and np.abs(fc1_k).max() > 0.8 / math.sqrt(d)
  assert np.abs(fc1_b).max() <= 1 / math.sqrt(d) + 1e-7 and np.any(fc1_b != 0)
  assert np.abs(fc2_b).max() <= 1 / math.sqrt(h) + 1e-7 and np.any(fc2_b != 0)   # fan_in = hidden units
  assert np.abs(cls_b).max() <= 1 / math.sqrt(d) + 1e-7 and np.any(cls_b != 0)


def test_stpn_default_is_keras_default():
  model = stpn.STPN(modalities=("rgb",), hidden_units=32).build_models(5, {"rgb": 64})["rgb"]
  for path, value in _weights(model).items():
    if "bias" in path:
      assert np.all(value == 0), path


def test_bgm_and_aumn_wiring():
  model = bgm.BGM(modalities=("rgb",), hidden_units=16, kernel_initializer="zeros",
                  bias_initializer="torch_default").build_models(4, {"rgb": 32})["rgb"]
  for path, value in _weights(model).items():
    if "kernel" in path:
      assert np.all(value == 0), path
    elif "bias" in path:
      assert np.any(value != 0), path
  model = aumn.AUMN(modalities=("rgb",), embedding_dim=16, value_bottleneck=8, sparsity_weights={"rgb": 0.1},
                    kernel_initializer="kaiming_uniform_leaky_relu",
                    bias_initializer="torch_default").build_models(3, {"rgb": 32})["rgb"]
  w = _weights(model)
  conv_k = next(v for k, v in w.items() if "embedding" in k and "kernel" in k)
  conv_b = next(v for k, v in w.items() if "embedding" in k and "bias" in k)
  assert np.abs(conv_k).max() <= math.sqrt(6 / (3 * 32)) + 1e-7
  assert np.abs(conv_k).max() > 0.8 * math.sqrt(6 / (3 * 32))
  assert np.abs(conv_b).max() <= 1 / math.sqrt(3 * 32) + 1e-7 and np.any(conv_b != 0)
  value_out_b = next(v for k, v in w.items() if "value_output" in k and "bias" in k)
  assert np.abs(value_out_b).max() <= 1 / math.sqrt(8) + 1e-7 and np.any(value_out_b != 0)
  memory = next(v for k, v in w.items() if k.endswith("memory"))
  assert np.any(memory != 0)                                   # the templates keep their own N(0, 1/F)
