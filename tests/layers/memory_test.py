"""The AUMN memory bank (stpn_tf/layers/memory.py): Eqs. 2, 3, 5, 6, 10, 11-12 and 15 against hand-computed values."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from stpn_tf.layers import memory


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def test_eq5_similarity_by_hand_and_masked():
  queries = np.array([[[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]]], np.float32)  # [1, 3, 4]
  keys = np.array([[2.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]], np.float32)                          # [2, 4]
  mask = np.array([[1.0, 1.0, 0.0]], np.float32)
  s = memory.scaled_similarity(queries, keys, mask).numpy()
  # sqrt(d) = 2: row 0 -> sigmoid([2/2, 0]), row 1 -> sigmoid([0, 2/2]); the padded row is 0.
  expected = np.array([[[_sigmoid(1.0), 0.5], [0.5, _sigmoid(1.0)], [0.0, 0.0]]])
  np.testing.assert_allclose(s, expected, rtol=1e-6)


def test_eq6_efficient_form_equals_the_literal_formula():
  """Eq. 6 as printed: V^O = S V^M [T, C*F], reshaped to W^cls(t) [F, C]; CAS(t) = X^s(t) W^cls(t) (Eq. 15)."""
  rng = np.random.default_rng(0)
  b, t, k, f, c = 2, 5, 3, 4, 6
  features = rng.normal(size=(b, t, f)).astype(np.float32)
  similarity = rng.random((b, t, k)).astype(np.float32)
  values_flat = rng.normal(size=(k, c * f)).astype(np.float32)                # V^M [K, C*F]
  v_o = np.einsum("btk,kj->btj", similarity, values_flat)                     # [B, T, C*F], Eq. 6 literally
  w_cls = v_o.reshape(b, t, f, c)                                             # row-major [F, C] per segment
  literal = np.einsum("btf,btfc->btc", features, w_cls)
  efficient = memory.segment_class_scores(features, values_flat.reshape(k, f, c), similarity).numpy()
  np.testing.assert_allclose(efficient, literal, rtol=1e-5, atol=1e-5)
  # and a change in one template's classifier changes the result (the check can fail)
  other = values_flat.copy()
  other[1, 0] += 1.0
  assert not np.allclose(memory.segment_class_scores(features, other.reshape(k, f, c), similarity).numpy(), literal)


def test_eq10_diversity_by_hand():
  m = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)
  # M M^T - I = [[0, 1], [1, 1]] -> Frobenius norm sqrt(3)
  np.testing.assert_allclose(memory.diversity_loss(m).numpy(), np.sqrt(3.0), rtol=1e-6)
  np.testing.assert_allclose(memory.diversity_loss(np.eye(3, 5, dtype=np.float32)).numpy(), 0.0, atol=1e-7)


def test_eqs11_12_homogeneity_by_hand_ignores_padding():
  # Video 0: time sums [0.5, 0.5] -> p = [.5, .5]. Video 1: sums [ln 3 + 0.2, 0.2] -> p = [.75, .25].
  # Padded rows hold large values that must not count.
  s = np.array([[[0.25, 0.25], [0.25, 0.25], [9.0, 0.0]],
                [[np.log(3.0), 0.1], [0.2, 0.1], [0.0, 9.0]]], np.float32)
  mask = np.array([[1, 1, 0], [1, 1, 0]], np.float32)
  np.testing.assert_allclose(memory.template_probabilities(s, mask).numpy(), [[0.5, 0.5], [0.75, 0.25]], rtol=1e-5)
  expected = np.sqrt(0.625 ** 2 + 0.375 ** 2)                                  # || mean of p ||_2
  np.testing.assert_allclose(memory.homogeneity_loss(s, mask).numpy(), expected, rtol=1e-5)


def _layer(k=3, f=4, key_dim=2, bottleneck=5, c=6):
  layer = memory.ActionUnitMemory(k, f, key_dim, bottleneck, c, name="memory")
  layer.build(None)
  return layer


def test_eqs2_3_keys_and_values_are_the_encoders_of_the_memory():
  layer = _layer()
  m = layer.memory.numpy()
  wk, bk = [v.numpy() for v in layer.key_encoder.weights]
  np.testing.assert_allclose(layer.keys().numpy(), m @ wk + bk, rtol=1e-5, atol=1e-6)          # Eq. 2: one FC
  w1, b1 = [v.numpy() for v in layer.value_hidden.weights]
  w2, b2 = [v.numpy() for v in layer.value_output.weights]
  flat = np.maximum(m @ w1 + b1, 0.0) @ w2 + b2                                                   # Eq. 3: FC-ReLU-FC
  assert flat.shape == (3, 6 * 4)
  np.testing.assert_allclose(layer.values().numpy(), flat.reshape(3, 4, 6), rtol=1e-5, atol=1e-6)


def test_layer_call_matches_the_equations_and_masks_padding():
  layer = _layer()
  rng = np.random.default_rng(1)
  queries = rng.normal(size=(2, 4, 2)).astype(np.float32)
  features = rng.normal(size=(2, 4, 4)).astype(np.float32)
  mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], np.float32)
  s, cas, div = [x.numpy() for x in layer([queries, features, mask])]
  keys, values = layer.keys().numpy(), layer.values().numpy()
  s_ref = _sigmoid(np.einsum("btd,kd->btk", queries, keys) / np.sqrt(2.0)) * mask[..., None]
  np.testing.assert_allclose(s, s_ref, rtol=1e-5, atol=1e-6)
  cas_ref = np.einsum("btk,btf,kfc->btc", s_ref, features, values) * mask[..., None]
  np.testing.assert_allclose(cas, cas_ref, rtol=1e-4, atol=1e-5)
  m = layer.memory.numpy()
  np.testing.assert_allclose(div, [np.linalg.norm(m @ m.T - np.eye(3))] * 2, rtol=1e-5)
  assert np.all(s[1, 2:] == 0) and np.all(cas[1, 2:] == 0)


def test_memory_is_trainable_through_the_losses():
  layer = _layer()
  rng = np.random.default_rng(2)
  queries = tf.constant(rng.normal(size=(2, 4, 2)).astype(np.float32))
  features = tf.constant(rng.normal(size=(2, 4, 4)).astype(np.float32))
  with tf.GradientTape() as tape:
    s, cas, div = layer([queries, features, None])
    loss = tf.reduce_sum(cas) + memory.homogeneity_loss(s) + div[0]
  grads = tape.gradient(loss, layer.trainable_variables)
  assert len(grads) == 7 and all(g is not None and np.any(g.numpy() != 0) for g in grads)


def test_invalid_sizes_are_rejected():
  with pytest.raises(ValueError, match="positive"):
    memory.ActionUnitMemory(0, 4, 2, 5, 6)


def test_config_round_trip():
  layer = memory.ActionUnitMemory(3, 4, 2, 5, 6, value_activation="tanh", memory_stddev=0.3)
  clone = memory.ActionUnitMemory.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
  assert keras.saving.get_registered_object("stpn_tf>ActionUnitMemory") is memory.ActionUnitMemory
