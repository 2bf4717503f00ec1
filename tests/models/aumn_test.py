"""AUMN (stpn_tf/models/aumn.py): every equation on tiny inputs, masking, ablations, serialization, learning."""

import json
import os

from absl import flags
from absl.testing import flagsaver
import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from stpn_tf import runs
from stpn_tf import config
from stpn_tf import inference
from stpn_tf import train
from stpn_tf.data import pipeline
from stpn_tf.data import schema
from stpn_tf.data import synthetic
from stpn_tf.models import aumn
from stpn_tf.training import trainer as trainer_lib
from tests import testing_utils

FLAGS = flags.FLAGS
SMALL = dict(embedding_dim=8, embedding_kernel_size=3, num_templates=3, key_reduction=2, value_bottleneck=4)


def _softmax(x, axis=-1):
  e = np.exp(x - x.max(axis=axis, keepdims=True))
  return e / e.sum(axis=axis, keepdims=True)


# ------------------------------------------------------------------------------------------- Eq. 1

def test_eq1_embedding_by_hand_and_padding_does_not_leak():
  layer = aumn.TemporalEmbedding(units=1, kernel_size=3)
  layer.build([(None, None, 2), (None, None)])
  kernel = np.array([[[1.0], [0.0]], [[2.0], [1.0]], [[0.0], [-1.0]]], np.float32)   # [k=3, D=2, units=1]
  layer.conv.kernel.assign(kernel)
  layer.conv.bias.assign([-1.0])
  x = np.array([[[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [50.0, 50.0]]], np.float32)    # last row is padding
  mask = np.array([[1, 1, 1, 0]], np.float32)
  out = layer([x, mask]).numpy()[0, :, 0]
  # y_t = relu(x_{t-1}.w0 + x_t.w1 + x_{t+1}.w2 + b), w0 = (1, 0), w1 = (2, 1), w2 = (0, -1), zeros outside.
  # t0: 0 + 4 - 0 - 1 = 3;  t1: 1 + 6 - 1 - 1 = 5;  t2: 3 + 1 - 0 - 1 = 3 (the padded row 50s must not enter).
  np.testing.assert_allclose(out, [3.0, 5.0, 3.0, 0.0], rtol=1e-6)
  unpadded = layer([x[:, :3], np.ones((1, 3), np.float32)]).numpy()[0, :, 0]
  np.testing.assert_allclose(unpadded, out[:3], rtol=1e-6)
  # ReLU (Eq. 1): a negative pre-activation gives 0
  layer.conv.bias.assign([-10.0])
  assert np.all(layer([x, mask]).numpy() == 0.0)


# ------------------------------------------------------------------------------------------- Eq. 4

def test_eq4_self_attention_keeps_identity_and_masks_padding():
  q = np.array([[[1.0], [0.0], [5.0]]], np.float32)                    # d = 1: scale 1
  x = np.array([[[1.0, 0.0], [0.0, 2.0], [7.0, 7.0]]], np.float32)     # the padded row must not be attended
  mask = np.array([[1, 1, 0]], np.float32)
  out = aumn.self_attention_with_identity(q, x, mask).numpy()[0]
  e = np.e
  row0 = (e / (e + 1)) * x[0, 0] + (1 / (e + 1)) * x[0, 1] + x[0, 0]  # softmax([1*1, 1*0]) + I
  row1 = 0.5 * x[0, 0] + 0.5 * x[0, 1] + x[0, 1]                      # softmax([0, 0]) + I
  np.testing.assert_allclose(out, [row0, row1, [0.0, 0.0]], rtol=1e-6)
  # without a mask the third segment is attended and attends
  full = aumn.self_attention_with_identity(q, x).numpy()[0]
  assert not np.allclose(full[:2], out[:2]) and np.any(full[2] != 0)


def test_eq4_scale_is_sqrt_of_the_query_width():
  q = np.array([[[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]], np.float32)   # d = 4: logits [4/2, 0]
  x = np.array([[[1.0], [0.0]]], np.float32)
  out = aumn.self_attention_with_identity(q, x).numpy()[0, 0, 0]
  np.testing.assert_allclose(out, _softmax(np.array([2.0, 0.0]))[0] + 1.0, rtol=1e-6)


# ------------------------------------------------------------------------------------------- Eqs. 7-8 in the model

def _model(num_classes=3, dim=6, **kwargs):
  params = dict(SMALL)
  params.update(kwargs)
  return aumn.build_stream_model(dim, num_classes, **params)


def _inputs(b=2, t=5, dim=6, seed=0):
  rng = np.random.default_rng(seed)
  mask = np.ones((b, t), np.float32)
  mask[1, 3:] = 0
  features = rng.random((b, t, dim)).astype(np.float32) * mask[..., None]
  return {"features": features, "mask": mask}


def test_eqs7_8_attention_is_max_over_templates_and_prediction_the_weighted_mean():
  model = _model()
  inputs = _inputs()
  out = {k: v.numpy() for k, v in model(inputs).items()}
  mask = inputs["mask"]
  np.testing.assert_allclose(out["attention"], out["similarity"].max(-1) * mask, rtol=1e-6)     # Eq. 7
  lengths = mask.sum(1, keepdims=True)
  logits = np.einsum("bt,btc->bc", out["attention"] * mask, out["cas"]) / lengths               # Eq. 8 inner
  np.testing.assert_allclose(out["logits"], logits, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out["probabilities"], _softmax(logits), rtol=1e-5)                 # Eq. 8
  assert out["similarity"].shape == (2, 5, 3) and out["cas"].shape == (2, 5, 3)


def test_whole_model_ignores_padding():
  model = _model()
  inputs = _inputs()
  rng = np.random.default_rng(5)
  padded = {"features": np.concatenate([inputs["features"], rng.random((2, 4, 6)).astype(np.float32)], 1),
            "mask": np.concatenate([inputs["mask"], np.zeros((2, 4), np.float32)], 1)}
  padded["features"][1, 3:5] = 99.0                                    # junk in the padded rows of video 1
  a = {k: v.numpy() for k, v in model(inputs).items()}
  b = {k: v.numpy() for k, v in model(padded).items()}
  for key in ("logits", "probabilities", "diversity"):
    np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6)
  for key in ("attention", "cas", "similarity"):
    np.testing.assert_allclose(b[key][:, :5], a[key], rtol=1e-5, atol=1e-6)
    assert np.all(b[key][:, 5:] == 0) and np.all(b[key][1, 3:] == 0)
  # video 1 alone, unpadded, gives the same real rows
  alone = {k: v.numpy() for k, v in model({"features": inputs["features"][1:, :3],
                                           "mask": np.ones((1, 3), np.float32)}).items()}
  np.testing.assert_allclose(alone["logits"], a["logits"][1:], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(alone["cas"], a["cas"][1:, :3], rtol=1e-5, atol=1e-6)


def test_without_self_attention_the_memory_reads_the_embedding():
  model = _model(use_self_attention=False)
  assert "self_attention" not in [layer.name for layer in model.layers]
  embed = keras.Model(model.inputs, model.get_layer("embedding").output)
  inputs = _inputs()
  x_e = embed(inputs).numpy()
  memory = model.get_layer("memory")
  cas = np.einsum("btk,btf,kfc->btc", model(inputs)["similarity"].numpy(), x_e, memory.values().numpy())
  np.testing.assert_allclose(model(inputs)["cas"].numpy(), cas * inputs["mask"][..., None], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------- losses, Eqs. 9-14

def test_eq9_cross_entropy_with_l1_normalized_labels():
  logits = np.array([[0.0, np.log(2.0), 0.0], [0.0, 0.0, 0.0]], np.float32)   # softmax [.25 .5 .25], [1/3 ...]
  labels = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], np.float32)
  # video 0: y = [.5 0 .5] -> -(.5 ln .25 + .5 ln .25) = ln 4; video 1: -ln(1/3)
  np.testing.assert_allclose(aumn.classification_loss(logits, labels).numpy(), [np.log(4.0), np.log(3.0)],
                             rtol=1e-6)


def test_eq13_sparsity_by_hand():
  att = np.array([[0.2, 0.4, 0.9], [1.0, 0.0, 0.5]], np.float32)
  mask = np.array([[1, 1, 0], [1, 1, 1]], np.float32)
  np.testing.assert_allclose(aumn.sparsity_loss(att, mask).numpy(), [0.3, 0.5], rtol=1e-6)
  np.testing.assert_allclose(aumn.sparsity_loss(att, mask, "sum").numpy(), [0.6, 1.5], rtol=1e-6)
  with pytest.raises(ValueError, match="normalization"):
    aumn.sparsity_loss(att, mask, "max")


def _loss_outputs():
  # two videos, two templates; S chosen so that p^O (Eq. 11) = [.5 .5] and [.75 .25]
  s = np.array([[[0.25, 0.25], [0.25, 0.25], [0.9, 0.0]],
                [[np.log(3.0), 0.1], [0.2, 0.1], [0.3, 0.3]]], np.float32)   # video 0's last row is padding
  return {"logits": tf.constant([[0.0, np.log(2.0), 0.0], [0.0, 0.0, 0.0]], tf.float32),
          "attention": tf.constant([[0.2, 0.4, 0.9], [1.0, 0.0, 0.5]], tf.float32),
          "similarity": tf.constant(s), "diversity": tf.constant([2.0, 2.0])}


def test_eq14_total_by_hand_with_per_network_gamma():
  task = aumn.AUMN()                           # alpha .01, beta .02, gamma .05 (rgb) / .03 (flow)
  batch = {"labels": tf.constant([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
           "mask": tf.constant([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])}
  l_cls = np.array([np.log(4.0), np.log(3.0)])
  l_h = np.sqrt(0.625 ** 2 + 0.375 ** 2)
  l_s = np.array([0.3, 0.5])
  for network, gamma in (("rgb", 0.05), ("flow", 0.03)):
    losses = {k: v.numpy() for k, v in task.losses(network, _loss_outputs(), batch).items()}
    np.testing.assert_allclose(losses["classification"], l_cls, rtol=1e-6)
    np.testing.assert_allclose(losses["homogeneity"], [l_h, l_h], rtol=1e-5)
    np.testing.assert_allclose(losses["sparsity"], l_s, rtol=1e-6)
    np.testing.assert_allclose(losses["diversity"], [2.0, 2.0])
    np.testing.assert_allclose(losses["total"], l_cls + 0.01 * 2.0 + 0.02 * l_h + gamma * l_s, rtol=1e-5)


@pytest.mark.parametrize("kwargs,weights", [
    (dict(), (0.01, 0.02, 0.05)),
    (dict(use_sparsity_loss=False), (0.01, 0.02, 0.0)),
    (dict(use_diversity_loss=False), (0.0, 0.02, 0.05)),
    (dict(use_homogeneity_loss=False), (0.01, 0.0, 0.05)),
    (dict(num_templates=1), (0.0, 0.0, 0.05)),            # Fig. 4: L_d and L_h removed when K = 1
])
def test_ablation_switches_set_the_loss_weights(kwargs, weights):
  task = aumn.AUMN(**kwargs)
  assert (task.diversity_weight, task.homogeneity_weight, task.sparsity_weights["rgb"]) == weights


def _batch(dim=6, classes=3, t=7):
  rng = np.random.default_rng(0)
  mask = np.ones((2, t), np.float32)
  mask[1, 4:] = 0
  return {"rgb": rng.random((2, t, dim), np.float32) * mask[..., None],
          "flow": rng.random((2, t, dim), np.float32) * mask[..., None],
          "mask": mask, "labels": np.eye(classes, dtype=np.float32)[[0, 2]]}


ABLATIONS = [
    dict(),
    dict(use_sparsity_loss=False, use_diversity_loss=False, use_homogeneity_loss=False,
         use_self_attention=False),                                            # Table 4, first row
    dict(use_diversity_loss=False, use_homogeneity_loss=False, use_self_attention=False),   # L_s only
    dict(use_homogeneity_loss=False, use_self_attention=False),                # L_s + L_d
    dict(use_diversity_loss=False, use_self_attention=False),                  # L_s + L_h
    dict(use_self_attention=False),                                            # all losses, no S
    dict(num_templates=1), dict(num_templates=5),                              # Fig. 4
    dict(modalities=("rgb",)), dict(modalities=("flow",)),
    dict(sparsity_normalization="sum"),
]


@pytest.mark.parametrize("kwargs", ABLATIONS)
def test_every_ablation_builds_and_trains_a_step(kwargs):
  keras.utils.set_random_seed(0)   # a 4-wide EncV bottleneck over one template can start with every ReLU off
  params = dict(SMALL)
  params.update(kwargs)
  task = aumn.AUMN(**params)
  models = task.build_models(3, {"rgb": 6, "flow": 6})
  assert set(models) == set(kwargs.get("modalities", ("rgb", "flow")))
  batch = _batch()
  for name, model in models.items():
    opt = keras.optimizers.Adam(1e-2)
    before = [v.numpy().copy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
      out = model(task.network_inputs(name, batch), training=True)
      losses = task.losses(name, out, batch)
      loss = tf.reduce_mean(losses["total"])
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    assert all(not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    assert np.isfinite(loss.numpy())
    assert out["cas"].shape == (2, 7, 3) and out["similarity"].shape[-1] == params.get("num_templates", 3)
    np.testing.assert_array_equal(out["attention"].numpy()[1, 4:], 0.0)


def test_bad_settings_are_rejected():
  with pytest.raises(ValueError, match="modalities"):
    aumn.AUMN(modalities=("depth",))
  with pytest.raises(ValueError, match="sparsity_normalization"):
    aumn.AUMN(sparsity_normalization="max")
  with pytest.raises(ValueError, match="sparsity_weights"):
    aumn.AUMN(sparsity_weights={"rgb": 0.1})
  with pytest.raises(ValueError, match="divisible"):
    aumn.build_stream_model(6, 3, embedding_dim=10, key_reduction=4)


def test_model_config_round_trip_gives_same_outputs():
  model = _model()
  clone = keras.Model.from_config(model.get_config())
  clone.set_weights(model.get_weights())
  inputs = _inputs()
  for key, value in model(inputs).items():
    np.testing.assert_allclose(value.numpy(), clone(inputs)[key].numpy(), rtol=1e-5, atol=1e-6)


def test_saved_keras_file_round_trip(tmp_path):
  model = _model()
  path = str(tmp_path / "aumn.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  inputs = _inputs()
  np.testing.assert_allclose(loaded(inputs)["cas"].numpy(), model(inputs)["cas"].numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------- gin and the binary

@pytest.mark.parametrize("gin_file", ["aumn.gin", "aumn_activitynet12.gin", "aumn_activitynet13.gin"])
def test_gin_files_parse_and_bind_the_paper_values(gin_file):
  config.parse_gin([gin_file], [], finalize=False)
  task = gin.query_parameter("train_eval.task").scoped_configurable_fn()
  assert isinstance(task, aumn.AUMN)
  assert task.sparsity_weights == {"rgb": 0.05, "flow": 0.03}
  assert (task.diversity_weight, task.homogeneity_weight) == (0.01, 0.02)
  assert task.model_kwargs["num_templates"] == 7 and task.model_kwargs["embedding_dim"] == 512
  assert gin.query_parameter("make_optimizer.learning_rate") == 1e-4
  assert gin.query_parameter("train_eval.batch_size") == 32
  assert gin.query_parameter("aumn_detect.nms_threshold") == 0.3
  assert gin.query_parameter("aumn_detect.theta") == 0.3
  assert gin.query_parameter("aumn_detect.class_threshold") == 0.1


def test_train_and_evaluate_through_main(tmp_path):
  data_dir = tmp_path / "data"
  testing_utils.write_random_dataset(data_dir, num_train=8, num_test=3, dim=16)
  model_dir = tmp_path / "model"
  params = ["train_eval.batch_size = 4", "train_eval.steps_per_loop = 1", "train_eval.checkpoint_every = 2",
            "train_eval.eval_every = 0", "UniformPerturbedSampler.num_segments = 16", "AUMN.embedding_dim = 8",
            "AUMN.value_bottleneck = 4", "AUMN.key_reduction = 2"]
  argv = ["train", "--gin_file=aumn.gin", f"--data_dir={data_dir}", f"--model_dir={model_dir}", "--num_steps=2"]
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    FLAGS(argv + [f"--gin_param={p}" for p in params])
    gin.clear_config()
    train.main([])
  assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")
  for name in ("eval_test.json", "predictions_test.json", "operative_config.gin"):
    assert os.path.exists(model_dir / name), name
  assert "AUMN.sparsity_weights" in (model_dir / "operative_config.gin").read_text()
  health = json.loads((model_dir / "eval_test.json").read_text())["attention_health"]["networks"]
  assert set(health) == {"rgb", "flow"} and health["rgb"]["num_segments"] > 0
  task, models = runs.restore_models(str(model_dir), str(data_dir))
  assert isinstance(task, aumn.AUMN) and set(models) == {"rgb", "flow"}


# ------------------------------------------------------------------------------------------- learning

def test_learns_the_tiny_synthetic_dataset(tmp_path):
  """Two hundred steps on the tiny synthetic preset reach video-level classification mAP >= 0.9 on its test split."""
  data_dir = str(tmp_path / "tiny")
  synthetic.generate(data_dir, "tiny", seed=0)
  gin.parse_config(["make_optimizer.learning_rate = 1e-3", "UniformPerturbedSampler.num_segments = 64"])
  keras.utils.set_random_seed(0)
  task = aumn.AUMN(embedding_dim=32, num_templates=4, key_reduction=4, value_bottleneck=16)
  manifest = schema.read_manifest(data_dir)
  trainer = trainer_lib.Trainer(task, manifest, tf.distribute.get_strategy(), global_batch_size=16)
  iterator = iter(pipeline.make_train_dataset(data_dir, batch_size=16, streams=task.streams, seed=0))
  first = trainer.train_steps(iterator, 1)
  logs = trainer.train_steps(iterator, 199)
  for network in ("rgb", "flow"):
    assert logs[f"{network}/loss_classification"] < 0.5 * first[f"{network}/loss_classification"], (first, logs)
  test_map = inference.classification_metrics(task, trainer.models, data_dir, "test")["classification_mAP"]
  print(f"classification mAP on test: {test_map:.3f}")
  assert test_map >= 0.9, test_map
