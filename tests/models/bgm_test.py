"""Background modeling (stpn_tf/models/bgm.py, stpn_tf/layers/smoothing.py): every loss by hand, Gaussian
smoothing, masks, ablations, the padded-batch equivalence, gin, a learning test and the training binary."""

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
from stpn_tf.layers import smoothing
from stpn_tf.models import bgm
from stpn_tf.postprocess import bgm_inference
from stpn_tf.training import trainer
from tests import testing_utils

FLAGS = flags.FLAGS
A = np.exp(-0.5)  # Unnormalized Gaussian weight at one sigma.


# ------------------------------------------------------------------------------------------ Gaussian smoothing


def test_gaussian_kernel():
  k = smoothing.gaussian_kernel(1.0, truncate=1.0)
  np.testing.assert_allclose(k, np.array([A, 1.0, A]) / (1 + 2 * A))
  k = smoothing.gaussian_kernel(1.5, truncate=3.0)
  assert k.size == 2 * 5 + 1 and np.isclose(k.sum(), 1.0) and np.allclose(k, k[::-1]) and k.argmax() == 5
  np.testing.assert_array_equal(smoothing.gaussian_kernel(0.0), [1.0])
  with pytest.raises(ValueError, match="sigma"):
    smoothing.gaussian_kernel(-1.0)


def test_gaussian_smooth_by_hand_renormalized_at_the_ends():
  x = np.array([[0.0, 1.0, 0.0, 0.0]], np.float32)
  out = smoothing.gaussian_smooth(x, 1.0, truncate=1.0).numpy()
  # Kernel [A, 1, A]; at t = 0 only t = 0, 1 lie in the video: (A * 1) / (1 + A).
  np.testing.assert_allclose(out, [[A / (1 + A), 1 / (1 + 2 * A), A / (1 + 2 * A), 0.0]], rtol=1e-6)
  # A constant stays constant up to the edges.
  np.testing.assert_allclose(smoothing.gaussian_smooth(np.full((1, 7), 0.3, np.float32), 2.0).numpy(), 0.3,
                             rtol=1e-6)


def test_gaussian_smooth_ignores_padding():
  x = np.array([[0.0, 1.0, 0.0, 5.0, 7.0]], np.float32)      # the last two are padding
  mask = np.array([[1, 1, 1, 0, 0]], np.float32)
  out = smoothing.gaussian_smooth(x, 1.0, mask, truncate=1.0).numpy()
  np.testing.assert_allclose(out, [[A / (1 + A), 1 / (1 + 2 * A), A / (1 + A), 0.0, 0.0]], rtol=1e-6)
  alone = smoothing.gaussian_smooth(x[:, :3], 1.0, truncate=1.0).numpy()
  np.testing.assert_allclose(out[:, :3], alone, rtol=1e-6)


def test_gaussian_smooth_channels_are_independent_and_sigma_zero_is_identity():
  rng = np.random.default_rng(0)
  x = rng.random((2, 9, 3)).astype(np.float32)
  out = smoothing.gaussian_smooth(x, 1.3).numpy()
  for c in range(3):
    np.testing.assert_allclose(out[..., c], smoothing.gaussian_smooth(x[..., c], 1.3).numpy(), rtol=1e-6)
  np.testing.assert_allclose(smoothing.gaussian_smooth(x, 0.0).numpy(), x)


# ------------------------------------------------------------------------------------------ losses by hand


def test_foreground_loss_eq3():
  logits = np.array([[0.0, 1.0, 2.0, 0.0]], np.float32)       # K = C + 1 = 4, index 0 = background
  log_z = np.log(1 + np.e + np.e ** 2 + 1)
  # One label y = class 1 = softmax index 2: -log p_fg[2] = log Z - 2.
  loss = bgm.foreground_loss(logits, np.array([[0, 1, 0]], np.float32)).numpy()
  np.testing.assert_allclose(loss, [log_z - 2.0], rtol=1e-6)
  # Two labels: the mean of their cross-entropies (uniform target over the present classes).
  loss = bgm.foreground_loss(logits, np.array([[1, 1, 0]], np.float32)).numpy()
  np.testing.assert_allclose(loss, [0.5 * (log_z - 1.0) + 0.5 * (log_z - 2.0)], rtol=1e-6)
  # No label: a background video, y = 0.
  loss = bgm.foreground_loss(logits, np.array([[0, 0, 0]], np.float32)).numpy()
  np.testing.assert_allclose(loss, [log_z - 0.0], rtol=1e-6)


def test_background_loss_eq5():
  loss = bgm.background_loss(np.array([[1.0, 0.0, 2.0]], np.float32)).numpy()
  np.testing.assert_allclose(loss, [-(1.0 - np.log(np.e + 1 + np.e ** 2))], rtol=1e-6)


def test_cluster_loss_eqs_8_to_10():
  # x_fg: u_fg . x = 1, u_bg . x = 0 -> z_fg = e / (e + 1). x_bg: 0 and 2 -> z_bg = e^2 / (1 + e^2).
  loss = bgm.cluster_loss(np.array([[1.0, 0.0]], np.float32), np.array([[0.0, 2.0]], np.float32)).numpy()
  np.testing.assert_allclose(loss, [-np.log(np.e / (np.e + 1)) - np.log(np.e ** 2 / (1 + np.e ** 2))], rtol=1e-6)


def _tcam_by_hand():
  """T = 3 (the last segment is padding), K = 3. t0 logits 0 -> p = 1/3 each; t1 logits (0, ln 2, ln 3) ->
  p = (1/6, 1/3, 1/2)."""
  tcam = np.array([[[0.0, 0.0, 0.0], [0.0, np.log(2.0), np.log(3.0)], [9.0, -9.0, 4.0]]], np.float32)
  mask = np.array([[1.0, 1.0, 0.0]], np.float32)
  return tcam, mask


def test_guide_targets_eqs_6_7_without_smoothing():
  tcam, mask = _tcam_by_hand()
  fg, bg = bgm.guide_targets(tcam, np.array([[1.0, 0.0]]), mask, sigma=0.0)
  np.testing.assert_allclose(fg.numpy(), [[1 / 3, 1 / 3, 0.0]], rtol=1e-6)      # p_t[class 0] = softmax index 1
  np.testing.assert_allclose(bg.numpy(), [[2 / 3, 5 / 6, 0.0]], rtol=1e-6)      # 1 - p_t[background]
  # Footnote 1: two present classes are max-pooled.
  fg, _ = bgm.guide_targets(tcam, np.array([[1.0, 1.0]]), mask, sigma=0.0)
  np.testing.assert_allclose(fg.numpy(), [[1 / 3, 1 / 2, 0.0]], rtol=1e-6)


def test_guide_targets_smooth_each_class_then_max_pool():
  # Class 0 is on at t0, class 1 at t2. Smoothing then max differs from max then smoothing at t1.
  logits = np.full((1, 3, 3), -30.0, np.float32)
  logits[0, 0, 1] = 30.0
  logits[0, 2, 2] = 30.0
  logits[0, 1, 0] = 30.0                     # t1 is background
  fg, bg = bgm.guide_targets(logits, np.array([[1.0, 1.0]]), np.ones((1, 3)), sigma=1.0, truncate=1.0)
  # Per class (kernel [A, 1, A], renormalized): class 0 -> [1/(1+A), A/(1+2A), 0], class 1 mirrored.
  np.testing.assert_allclose(fg.numpy(), [[1 / (1 + A), A / (1 + 2 * A), 1 / (1 + A)]], rtol=1e-5)
  # Eq. 7: 1 - p[bg] = [1, 0, 1], smoothed.
  np.testing.assert_allclose(bg.numpy(), [[1 / (1 + A), 2 * A / (1 + 2 * A), 1 / (1 + A)]], rtol=1e-5)


def test_guide_loss_by_hand_ignores_padding():
  tcam, mask = _tcam_by_hand()
  fg, bg = bgm.guide_targets(tcam, np.array([[1.0, 0.0]]), mask, sigma=0.0)
  attention = np.array([[0.5, 1.0, 0.9]], np.float32)
  # t0: |0.5 - 1/3| + |0.5 - 2/3| = 1/3; t1: |1 - 1/3| + |1 - 5/6| = 5/6; mean over the 2 real segments.
  np.testing.assert_allclose(bgm.guide_loss(attention, fg, bg, mask).numpy(), [(1 / 3 + 5 / 6) / 2], rtol=1e-6)


def test_guide_target_gradient_switch():
  tcam = tf.Variable(np.random.default_rng(0).normal(size=(1, 4, 3)).astype(np.float32))
  attention = tf.constant([[0.2, 0.9, 0.4, 0.7]])
  mask = tf.ones((1, 4))
  for flows in (False, True):
    with tf.GradientTape() as tape:
      fg, bg = bgm.guide_targets(tcam, tf.constant([[1.0, 0.0]]), mask, 1.0, stop_gradient=not flows)
      loss = bgm.guide_loss(attention, fg, bg, mask)
    grad = tape.gradient(loss, tcam)
    assert (grad is not None and np.abs(grad.numpy()).sum() > 0) == flows


def _outputs_by_hand():
  tcam, mask = _tcam_by_hand()
  outputs = {"logits": tf.constant([[0.0, 1.0, 2.0]]), "bg_logits": tf.constant([[1.0, 0.0, 2.0]]),
             "cluster_fg_logits": tf.constant([[1.0, 0.0]]), "cluster_bg_logits": tf.constant([[0.0, 2.0]]),
             "tcam": tf.constant(tcam), "attention": tf.constant([[0.5, 1.0, 0.0]])}
  labels = tf.constant([[1.0, 0.0]])
  log_z = np.log(1 + np.e + np.e ** 2)
  terms = {"foreground": log_z - 1.0, "background": log_z - 1.0, "guide": (1 / 3 + 5 / 6) / 2,
           "cluster": -np.log(np.e / (np.e + 1)) - np.log(np.e ** 2 / (1 + np.e ** 2)), "sparsity": 0.75}
  return outputs, labels, mask, terms


def test_total_loss_eq11():
  outputs, labels, mask, terms = _outputs_by_hand()
  losses = bgm.bgm_loss(outputs, labels, mask, alpha=0.1, beta=0.1, gamma=0.1, sigma=0.0)
  for key, value in terms.items():
    np.testing.assert_allclose(losses[key].numpy(), [value], rtol=1e-6, err_msg=key)
  expected = terms["foreground"] + 0.1 * (terms["background"] + terms["guide"] + terms["cluster"])
  np.testing.assert_allclose(losses["total"].numpy(), [expected], rtol=1e-6)
  # Each weight switches its term; the STPN sparsity term (Table 1 row 2) is off unless delta > 0.
  losses = bgm.bgm_loss(outputs, labels, mask, alpha=0.0, beta=0.3, gamma=0.0, delta=0.2, sigma=0.0)
  np.testing.assert_allclose(losses["total"].numpy(),
                             [terms["foreground"] + 0.3 * terms["guide"] + 0.2 * terms["sparsity"]], rtol=1e-6)


# ------------------------------------------------------------------------------------------ the model


def _batch(dim=8, classes=3, t=6):
  rng = np.random.default_rng(0)
  mask = np.ones((2, t), np.float32)
  mask[1, 4:] = 0
  rgb = rng.random((2, t, dim), np.float32) * mask[..., None]
  flow = rng.random((2, t, dim), np.float32) * mask[..., None]
  return {"rgb": rgb, "flow": flow, "mask": mask, "labels": np.array([[1, 0, 0], [0, 1, 1]], np.float32)}


def test_pooling_eqs_1_and_4_and_classifier_eq2():
  model = bgm.build_stream_model(8, 3, hidden_units=4)
  batch = _batch()
  out = model({"features": batch["rgb"], "mask": batch["mask"]})
  w = model.get_layer("classifier").kernel.numpy()                          # [D, C + 1]
  u = model.get_layer("cluster").kernel.numpy()                             # [D, 2] = (u_fg, u_bg)
  lam = out["attention"].numpy()
  for b, length in enumerate((6, 4)):
    x = batch["rgb"][b, :length]
    x_fg = (lam[b, :length, None] * x).sum(0) / length                      # Eq. 1
    x_bg = ((1 - lam[b, :length, None]) * x).sum(0) / length                # Eq. 4
    np.testing.assert_allclose(out["logits"].numpy()[b], x_fg @ w, rtol=1e-5)
    np.testing.assert_allclose(out["bg_logits"].numpy()[b], x_bg @ w, rtol=1e-5)
    np.testing.assert_allclose(out["cluster_fg_logits"].numpy()[b], x_fg @ u, rtol=1e-5)
    np.testing.assert_allclose(out["cluster_bg_logits"].numpy()[b], x_bg @ u, rtol=1e-5)
    p = np.exp(x_fg @ w) / np.exp(x_fg @ w).sum()                           # Eq. 2, softmax over C + 1
    np.testing.assert_allclose(out["probabilities"].numpy()[b], p, rtol=1e-5)
    np.testing.assert_allclose(out["tcam"].numpy()[b, :length], x @ w, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(lam[1, 4:], 0.0)
  assert out["tcam"].shape == (2, 6, 4)


def test_padded_batch_gives_the_losses_of_one_video_batches():
  """The faster padded, masked multi-video batch: every per-video loss term equals that of the video alone."""
  task = bgm.BGM(hidden_units=4, guide_sigma=1.5)
  models = task.build_models(3, {"rgb": 8, "flow": 8})
  batch = _batch()
  batch["rgb"][1, 4:] = 3.0     # garbage in the padding must not matter
  for name, model in models.items():
    padded = task.losses(name, model(task.network_inputs(name, batch)), batch)
    for b, length in enumerate((6, 4)):
      alone = {k: v[b:b + 1, :length] if k in ("rgb", "flow", "mask") else v[b:b + 1] for k, v in batch.items()}
      single = task.losses(name, model(task.network_inputs(name, alone)), alone)
      for key in padded:
        np.testing.assert_allclose(padded[key].numpy()[b], single[key].numpy()[0], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name} {key} video {b}")


# Paper Table 1 rows (L_fg always on): weights of (L_bg, L_guide, L_cluster, L_sparse).
TABLE1_ROWS = {
    "fg": (0, 0, 0, 0), "fg+sparse": (0, 0, 0, 0.1), "fg+guide": (0, 0.1, 0, 0), "fg+bg": (0.1, 0, 0, 0),
    "fg+bg+guide": (0.1, 0.1, 0, 0), "fg+bg+cluster": (0.1, 0, 0.1, 0), "fg+guide+cluster": (0, 0.1, 0.1, 0),
    "full": (0.1, 0.1, 0.1, 0)}


def _ablation_params(row):
  alpha, beta, gamma, delta = TABLE1_ROWS[row]
  return [f"BGM.background_weight = {alpha}", f"BGM.guide_weight = {beta}", f"BGM.cluster_weight = {gamma}",
          f"BGM.sparsity_weight = {delta}"]


@pytest.mark.parametrize("row", sorted(TABLE1_ROWS) + ["rgb_only", "flow_only"])
def test_every_ablation_builds_and_trains_a_step(row):
  params = ["BGM.hidden_units = 4"]
  if row.endswith("_only"):
    params.append(f"BGM.modalities = ('{row[:-5]}',)")
  else:
    params += _ablation_params(row)
  config.parse_gin(["bgm.gin"], params, finalize=False)
  task = bgm.BGM()
  models = task.build_models(3, {"rgb": 8, "flow": 8})
  assert set(models) == set(task.modalities)
  batch = _batch()
  for name, model in models.items():
    opt = keras.optimizers.Adam(1e-2)
    before = [v.numpy().copy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
      losses = task.losses(name, model(task.network_inputs(name, batch), training=True), batch)
      loss = tf.reduce_mean(losses["total"])
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    assert np.all(np.isfinite(losses["total"].numpy()))
    changed = [not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables)]
    assert any(changed)
    cluster_kernel = model.get_layer("cluster").kernel
    cluster_grad = grads[[v is cluster_kernel for v in model.trainable_variables].index(True)]
    # u_fg, u_bg only learn when L_cluster is on.
    assert (np.abs(cluster_grad.numpy()).sum() > 0) == (task.loss_kwargs["gamma"] > 0)


def test_bad_settings_are_rejected():
  with pytest.raises(ValueError, match="modalities"):
    bgm.BGM(modalities=("depth",))
  with pytest.raises(ValueError, match="guide_weight"):
    bgm.BGM(guide_weight=-0.1)
  with pytest.raises(ValueError, match="sigma"):
    bgm.BGM(guide_sigma=-1.0)


def test_model_config_round_trip_gives_same_outputs():
  model = bgm.build_stream_model(8, 3, hidden_units=4)
  clone = keras.Model.from_config(model.get_config())
  clone.set_weights(model.get_weights())
  batch = _batch()
  inputs = {"features": batch["rgb"], "mask": batch["mask"]}
  for key in ("logits", "bg_logits", "attention", "tcam", "cluster_bg_logits"):
    np.testing.assert_allclose(model(inputs)[key].numpy(), clone(inputs)[key].numpy(), atol=1e-6)


def test_video_probabilities_and_detect_drop_the_background_class():
  task = bgm.BGM()
  att = np.array([0.1, 0.9, 0.9, 0.1])
  tcam = np.zeros((4, 3))
  tcam[:, 0] = 100.0                          # background column: must not be scored
  tcam[1:3, 2] = 2.0
  out = {"attention": att, "tcam": tcam, "probabilities": np.array([0.5, 0.05, 0.45])}
  np.testing.assert_allclose(task.video_probabilities({"rgb": out, "flow": out}), [0.05, 0.45])
  det = task.detect({"rgb": out, "flow": out}, 2.0)
  assert set(det.class_index.tolist()) == {1}
  assert det.score.max() == pytest.approx(0.9 * 2.0)    # proposal [1, 2]: lambda 0.9 * w_c x = 2


def test_gin_file_settings():
  config.parse_gin(["bgm.gin"], [], finalize=False)
  task = gin.query_parameter("train_eval.task").scoped_configurable_fn()
  assert isinstance(task, bgm.BGM) and task.modalities == ("rgb", "flow")
  assert (task.loss_kwargs["alpha"], task.loss_kwargs["beta"], task.loss_kwargs["gamma"]) == (0.1, 0.1, 0.1)
  assert task.loss_kwargs["delta"] == 0.0
  assert gin.query_parameter("train_eval.batch_size") == 1
  assert gin.query_parameter("make_optimizer.learning_rate") == 1e-4
  np.testing.assert_allclose(gin.query_parameter("bgm_detect.attention_thresholds"),
                             bgm_inference.PAPER_ATTENTION_THRESHOLDS)
  assert gin.query_parameter("bgm_detect.class_threshold") == 0.1
  assert gin.query_parameter("bgm_detect.nms_threshold") == 0.5
  assert gin.query_parameter("bgm_detect.theta") == 0.5


# ------------------------------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
  """Two tiny synthetic datasets with the same class list (different seeds: different videos)."""
  root = tmp_path_factory.mktemp("bgm_data")
  dirs = [str(root / f"tiny{seed}") for seed in (0, 1)]
  for seed, path in enumerate(dirs):
    synthetic.generate(path, "tiny", seed=seed)
  return dirs


def test_learns_as_printed_on_the_small_v4_dataset(tmp_path):
  """bgm.gin exactly as shipped (the paper's 1/T pooling of Eqs. 1 and 4, lr 1e-4, one video per step; only the
  step count is the test's) learns on the `small_v4` preset: video-level classification well above chance (20
  classes) and, in both streams, an attention that ranks action segments above background without saturating.

  Measured (session 8) over training seeds 0 / 1 / 2 at 4,000 steps: classification mAP 0.86 / 0.65 / 0.86, median
  per-video attention AUC rgb 0.76 / 0.69 / 0.74, flow 0.75 / 0.67 / 0.70, at most 61% of a stream's segments below
  0.05 or 44% above 0.95; this test's first run (seed 0 again: the data order is not deterministic): 0.83, rgb
  0.70, flow 0.73, 65% / 42%. On 4-class data (the `tiny` and `tiny_v4` presets) the same file ends with the flow
  attention inverted (AUC 0.06-0.25), which is why the test does not use them (BUILD_NOTES.md, session 8).
  """
  data_dir = str(tmp_path / "small_v4")
  synthetic.generate(data_dir, "small_v4", seed=0)
  config.parse_gin(["bgm.gin"], ["train_eval.steps_per_loop = 500", "train_eval.checkpoint_every = 4000"])
  result = trainer.train_eval(str(tmp_path / "model"), data_dir, num_steps=4000)
  assert result["step"] == 4000
  evaluation = json.load(open(tmp_path / "model" / "eval_test.json"))
  assert evaluation["classification_mAP"] >= 0.55, evaluation["classification_mAP"]
  health = evaluation["attention_health"]["networks"]
  assert set(health) == {"rgb", "flow"}
  for network, h in health.items():
    assert h["median_video_auc"] >= 0.62, (network, h)
    assert h["share_below"] < 0.9 and h["share_above"] < 0.9, (network, h)
  assert evaluation["average_mAP_0.1:0.5"] > 0.1, evaluation["average_mAP_0.1:0.5"]


def test_all_segments_one_video_per_batch_and_mixed_datasets(tiny_dirs):
  """bgm.gin's input: every segment of one video per batch, drawn from both datasets when mixed."""
  config.parse_gin(["bgm.gin"], [])
  ds = pipeline.make_train_dataset(tiny_dirs, batch_size=1, streams=("rgb", "flow"), seed=0)
  # Both datasets number their videos alike, so a video is recognized by its id, length and first feature row.
  key = lambda vid, rgb: (vid, rgb.shape[0], tuple(np.round(rgb[0, :4], 4)))
  owner = {key(v.video_id, v.rgb): d for d in tiny_dirs for v in schema.read_videos(d, "train", ("rgb",))}
  lengths, seen = set(), set()
  for batch in ds.take(40):
    # Bucketed padding (AllSegmentsSampler): the real segments first, then zero rows up to a bucket length.
    n = int(batch["mask"].numpy().sum())
    assert batch["rgb"].shape[0] == 1 and np.all(batch["mask"].numpy()[0, :n] == 1)
    assert np.all(batch["rgb"].numpy()[0, n:] == 0)
    k = key(batch["video_id"][0].numpy().decode(), batch["rgb"][0].numpy()[:n])
    assert k in owner, k             # all T segments of a stored video, in order
    lengths.add(k[1])
    seen.add(owner[k])
  assert len(lengths) > 5 and seen == set(tiny_dirs)


def _run_main(data_dir, model_dir, num_steps, extra_params=()):
  params = ["BGM.hidden_units = 8", "train_eval.steps_per_loop = 2", "train_eval.checkpoint_every = 2",
            "train_eval.eval_every = 0"] + list(extra_params)
  argv = ["train", "--gin_file=bgm.gin", f"--data_dir={data_dir}", f"--model_dir={model_dir}",
          f"--num_steps={num_steps}"] + [f"--gin_param={p}" for p in params]
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    FLAGS(argv)
    gin.clear_config()
    train.main([])


def test_train_binary_with_extra_train_dirs(tiny_dirs, tmp_path):
  """`python -m stpn_tf.train --gin_file=bgm.gin` with a second dataset mixed in ("Ours + MV"), then resumed."""
  model_dir = str(tmp_path / "model")
  extra = f"train_eval.extra_train_dirs = ['{tiny_dirs[1]}']"
  _run_main(tiny_dirs[0], model_dir, 4, [extra])
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-4")
  assert "extra_train_dirs" in open(os.path.join(model_dir, "operative_config.gin")).read()
  result = json.load(open(os.path.join(model_dir, "eval_test.json")))
  assert len(result["mAP"]) == 9 and result["num_videos"] == 16
  preds = json.load(open(os.path.join(model_dir, "predictions_test.json")))
  assert preds["results"]                    # the top-class fallback gives every video detections
  assert json.load(open(os.path.join(model_dir, "run_info.json")))["task"] == "bgm"
  _run_main(tiny_dirs[0], model_dir, 6, [extra])
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-6")


def test_random_dataset_with_variable_lengths_trains(tmp_path):
  testing_utils.write_random_dataset(tmp_path / "d", num_train=4, num_test=2, dim=8)
  _run_main(str(tmp_path / "d"), str(tmp_path / "m"), 2)
  assert tf.train.latest_checkpoint(str(tmp_path / "m")).endswith("ckpt-2")
