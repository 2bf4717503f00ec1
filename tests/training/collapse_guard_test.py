"""The collapse guard in real (short) trainings on the tiny synthetic preset: it fires on a configuration whose
attention collapses and stays silent on one whose attention does not; the attention health reaches eval_test.json
and TensorBoard.

Measured on the tiny preset (generator v3, seed 0), reports every 10 steps (BUILD_NOTES.md, "When the attention
collapses"):
* BGM as printed (bgm.gin: lr 1e-4, one video per step, 1/T pooling): rgb below 0.05 on 98-100% of the segments
  from step 70, with a relapse (85% at step 110): the guard fires at step 90 and again at step 140. To keep the
  test short and away from that edge it trains BGM at 10x the paper's learning rate (1e-3, the only change): rgb
  is below 0.05 on 100% of the segments from step 10 (the guard fires at step 30), flow from step 30.
* STPN (stpn.gin, attention width 32, batch 8 x 64 segments): at most 2% of the segments below 0.05 and 4% above
  0.95 over 80 steps.
"""

import glob
import json
import logging
import os

import pytest
import tensorflow as tf

from stpn_tf import config
from stpn_tf.data import synthetic
from stpn_tf.training import trainer


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tiny") / "tiny0")
  synthetic.generate(path, "tiny", seed=0)
  return path


def _tags(model_dir, sub):
  events = glob.glob(os.path.join(model_dir, sub, "events.out.tfevents.*"))
  return {v.tag for path in events for e in tf.compat.v1.train.summary_iterator(path) for v in e.summary.value}


def test_warning_fires_when_bgm_collapses(tiny_dir, tmp_path, caplog, capsys):
  model_dir = str(tmp_path / "bgm")
  config.parse_gin(["bgm.gin"], ["make_optimizer.learning_rate = 1e-3", "train_eval.steps_per_loop = 10",
                                 "train_eval.checkpoint_every = 1000", "train_eval.eval_every = 0",
                                 "collapse_guard.patience = 3"])
  # absl's own logger too: once any test has parsed absl flags, it sits at WARNING and drops the progress lines.
  with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="absl"):
    result = trainer.train_eval(model_dir, tiny_dir, num_steps=60)
  training = {(w["network"], w["statistic"]): w for w in result["collapse_warnings"] if w["where"] == "training"}
  assert ("rgb", "share_below_0.05") in training, result["collapse_warnings"]
  rgb = training["rgb", "share_below_0.05"]
  assert rgb["reports"] >= 3 and rgb["value"] > 0.95 and rgb["mean"] < 0.05 and rgb["recovered_at_step"] is None
  assert rgb["last_step"] == 60 and rgb["first_step"] <= 60 - 20
  assert "network 'rgb'" in rgb["message"] and "When the attention collapses" in rgb["message"]
  # The final evaluation sees it too: the test videos' rgb attention is below 0.05 almost everywhere.
  health = result["attention_health"]["networks"]
  assert health["rgb"]["share_below"] > 0.95, health
  assert ("rgb", "final_evaluation") in {(w["network"], w["where"]) for w in result["collapse_warnings"]}
  # The progress lines say so, and eval_test.json records it.
  assert any("ATTENTION COLLAPSED:" in r.getMessage() and "rgb < 0.05" in r.getMessage() for r in caplog.records)
  assert any(r.levelno == logging.WARNING and "ATTENTION COLLAPSE: network 'rgb'" in r.getMessage()
             for r in caplog.records)
  summary = capsys.readouterr().out            # the final summary, after the evaluation table
  assert rgb["message"] in summary and "Known causes" in summary
  saved = json.load(open(os.path.join(model_dir, "eval_test.json")))
  assert saved["collapse_warnings"] == result["collapse_warnings"]
  assert saved["attention_health"] == result["attention_health"]
  assert {"rgb/attention_mean", "rgb/attention_below_0.05", "flow/attention_above_0.95"} <= _tags(model_dir, "train")
  assert "test/rgb/attention_median_video_auc" in _tags(model_dir, "test")


def test_silent_when_stpn_does_not_collapse(tiny_dir, tmp_path, caplog):
  model_dir = str(tmp_path / "stpn")
  # stpn.gin's beta 0.8 is the TF1 reproduction's 1e-4 converted at THUMOS14's 20 classes (C * 1e-4 * 400); at the
  # tiny preset's 4 classes the same conversion gives 0.16 (0.8 leaves ~90% of the rgb segments below 0.05 here).
  config.parse_gin(["stpn.gin"], ["STPN.sparsity_weight = 0.16", "STPN.hidden_units = 32", "train_eval.batch_size = 8",
                                  "UniformPerturbedSampler.num_segments = 64", "train_eval.steps_per_loop = 10",
                                  "train_eval.checkpoint_every = 1000", "train_eval.eval_every = 20",
                                  "train_eval.validation_fraction = 0.25", "validation_images.num_videos = 0"])
  # absl's own logger too: once any test has parsed absl flags, it sits at WARNING and drops the progress lines.
  with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="absl"):
    result = trainer.train_eval(model_dir, tiny_dir, num_steps=60)
  assert result["collapse_warnings"] == []
  assert not any("COLLAPSE" in r.getMessage() for r in caplog.records)
  health = result["attention_health"]["networks"]
  assert set(health) == {"rgb", "flow"}
  for name, r in health.items():
    assert r["share_below"] < 0.5 and r["share_above"] < 0.5, (name, r)
    assert r["num_videos_auc"] + r["num_videos_skipped"] == result["num_videos"]
    assert 0.0 <= r["median_video_auc"] <= 1.0
    # Every test video came with its feature masses (inference.predict_videos), so each has a correlation.
    assert -1.0 <= r["median_mass_correlation"] <= 1.0 and r["num_videos_mass"] == result["num_videos"]
  saved = json.load(open(os.path.join(model_dir, "eval_test.json")))
  assert saved["collapse_warnings"] == [] and saved["attention_health"] == result["attention_health"]
  # The periodic validation evaluation logs the attention AUC too.
  assert {"validation/rgb/attention_median_video_auc", "validation/flow/attention_below_0.05",
          "validation/flow/attention_mass_rank_correlation"} <= _tags(model_dir, "validation")


def test_training_statistics_over_real_segments_by_hand():
  # Two videos, the second padded after 2 segments: the padded 0.0 and 0.99 must not count.
  attention = tf.constant([[0.01, 0.5, 0.99, 0.2], [0.03, 0.97, 0.0, 0.99]])
  mask = tf.constant([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
  sums = {k: float(v) for k, v in trainer._attention_sums("rgb", attention, mask, 0.05, 0.95).items()}
  assert sums == pytest.approx({"rgb/attention_sum": 2.7, "rgb/attention_below": 2, "rgb/attention_above": 2,
                                "rgb/attention_count": 6})
  logs = dict(sums, **{"rgb/loss_total": 1.0})
  stats = trainer._attention_statistics(logs, ("rgb",), trainer.collapse_guard())
  assert stats["rgb"] == pytest.approx({"mean": 0.45, "share_below": 1 / 3, "share_above": 1 / 3})
  assert logs == pytest.approx({"rgb/loss_total": 1.0, "rgb/attention_mean": 0.45, "rgb/attention_below_0.05": 1 / 3,
                                "rgb/attention_above_0.95": 1 / 3})
