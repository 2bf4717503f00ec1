"""make_optimizer's two weight-decay forms against one Adam step computed by hand."""

import numpy as np
import pytest
import tensorflow as tf

from stpn_tf.training import optimizers

LR, WD, EPS = 0.1, 0.5, 1e-7
B1, B2 = 0.9, 0.999


def _one_step(**kwargs):
  var = tf.Variable([2.0, -1.0])
  grad = tf.constant([0.3, 0.2])
  opt = optimizers.make_optimizer(learning_rate=LR, **kwargs)
  opt.build([var])
  opt.apply_gradients([(grad, var)])
  return var.numpy()


def _adam_first_step(theta, g):
  """Adam's first step: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected m_hat = g, v_hat = g^2."""
  m_hat = ((1 - B1) * g) / (1 - B1)
  v_hat = ((1 - B2) * g * g) / (1 - B2)
  return theta - LR * m_hat / (np.sqrt(v_hat) + EPS)


def test_no_weight_decay_is_plain_adam():
  theta, g = np.array([2.0, -1.0]), np.array([0.3, 0.2])
  np.testing.assert_allclose(_one_step(), _adam_first_step(theta, g), rtol=1e-5)


def test_coupled_adds_l2_to_the_gradient_before_the_moments():
  theta, g = np.array([2.0, -1.0]), np.array([0.3, 0.2])
  # torch.optim.Adam(weight_decay=WD): g' = g + WD * theta = [1.3, -0.3]; first step moves by -lr * sign(g').
  expected = _adam_first_step(theta, g + WD * theta)
  np.testing.assert_allclose(expected, [1.9, -0.9], rtol=1e-5)
  np.testing.assert_allclose(_one_step(weight_decay=WD, weight_decay_mode="coupled"), expected, rtol=1e-5)


def test_decoupled_shrinks_the_weights_outside_adam():
  theta, g = np.array([2.0, -1.0]), np.array([0.3, 0.2])
  # Keras / AdamW: theta <- theta - lr * wd * theta, then the Adam step with the raw gradient.
  expected = _adam_first_step(theta * (1 - LR * WD), g)
  np.testing.assert_allclose(expected, [1.8, -1.05], rtol=1e-5)
  np.testing.assert_allclose(_one_step(weight_decay=WD, weight_decay_mode="decoupled"), expected, rtol=1e-5)


def test_bad_mode_is_named():
  with pytest.raises(ValueError, match="weight_decay_mode"):
    optimizers.make_optimizer(weight_decay=0.1, weight_decay_mode="l2")


def test_coupled_decay_comes_after_global_clipping():
  # torch: clip_grad_norm_(g, 0.1) first ([0.3, 0.2] -> norm 0.1), then step() adds WD * theta. Adam's first step
  # only sees the sign of g', so compare against a second, plain optimizer fed g_clipped + WD * theta by hand.
  var = tf.Variable([2.0, -1.0])
  opt = optimizers.make_optimizer(learning_rate=LR, weight_decay=WD, weight_decay_mode="coupled", global_clipnorm=0.1)
  opt.build([var])
  g = tf.constant([0.3, 0.2])
  opt.apply_gradients([(g, var)])
  opt.apply_gradients([(g, var)])
  clipped = g.numpy() * 0.1 / np.linalg.norm(g.numpy())
  ref_var = tf.Variable([2.0, -1.0])
  ref = optimizers.make_optimizer(learning_rate=LR)
  ref.build([ref_var])
  for _ in range(2):
    ref.apply_gradients([(tf.constant(clipped) + WD * ref_var, ref_var)])
  np.testing.assert_allclose(var.numpy(), ref_var.numpy(), rtol=1e-5)
