"""STPN learns on the tiny synthetic dataset: classification and attention (stpn_tf/models/stpn.py)."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from stpn_tf import inference
from stpn_tf.data import pipeline
from stpn_tf.data import sampling
from stpn_tf.data import schema
from stpn_tf.data import synthetic
from stpn_tf.models import stpn
from stpn_tf.training import trainer as trainer_lib

STEPS = 500


def _train(data_dir, sparsity_weight):
  # A larger learning rate than the paper's 1e-4 so that a few hundred steps suffice. Not stpn.gin's network and
  # beta: with them STPN's attention first saturates (rgb at 1 on 99% of the segments after 3,000 steps of the paper
  # file on the 20-class small_v4 preset) and only the sparsity term brings it down over the reproduction's 24,000
  # steps; on 4-class data at lr 3e-4 it collapsed to 0 (beta 0.8) or depended on the seed (beta 0.16, the same
  # reproduction weight at 4 classes). BUILD_NOTES.md "Session 8".
  gin.parse_config(["make_optimizer.learning_rate = 3e-4"])
  tf.keras.utils.set_random_seed(0)
  manifest = schema.read_manifest(data_dir)
  task = stpn.STPN(sparsity_weight=sparsity_weight)
  trainer = trainer_lib.Trainer(task, manifest, tf.distribute.get_strategy(), 16)
  ds = pipeline.make_train_dataset(data_dir, batch_size=16, seed=0, deterministic=True,
                                   sampler=sampling.UniformPerturbedSampler(num_segments=64))
  trainer.train_steps(iter(ds), STEPS)
  return task, trainer.models


def _attention_by_truth(task, models, data_dir):
  """Attention of every test segment, split by whether the segment's centre lies in a ground-truth instance."""
  rate = schema.read_manifest(data_dir).feature_rate
  fg, bg = [], []
  for info, outputs in inference.predict_videos(task, models, data_dir, "test"):
    centres = (np.arange(info["num_segments"]) + 0.5) / rate
    seg = info["segments"]
    inside = ((centres[:, None] >= seg[:, 0]) & (centres[:, None] < seg[:, 1])).any(axis=1)
    att = np.mean([o["attention"] for o in outputs.values()], axis=0)
    fg.append(att[inside])
    bg.append(att[~inside])
  return np.concatenate(fg), np.concatenate(bg)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tiny"))
  synthetic.generate(path, "tiny", seed=0)
  return path


@pytest.fixture(scope="module")
def trained(tiny):
  gin.clear_config()
  result = _train(tiny, sparsity_weight=0.2)
  gin.clear_config()
  return result


def test_learns_video_classification(tiny, trained):
  task, models = trained
  metrics = inference.classification_metrics(task, models, tiny, "test")
  assert metrics["classification_mAP"] >= 0.9, metrics


def test_attention_separates_actions_and_sparsity_suppresses_background(tiny, trained):
  task, models = trained
  fg, bg = _attention_by_truth(task, models, tiny)
  assert fg.mean() > bg.mean() + 0.2, (fg.mean(), bg.mean())
  # Not saturated into the no-attention baseline (every attention at 1): background is clearly lower and some of
  # it is switched off. Measured: fg 0.97, bg 0.63-0.75, only 2-4% of background below 0.1 (a weak result, see
  # BUILD_NOTES.md "STPN attention").
  assert bg.mean() < 0.8, bg.mean()
  print("attention fg %.3f bg %.3f bg<0.1 %.3f" % (fg.mean(), bg.mean(), np.mean(bg < 0.1)))
  assert np.mean(bg < 0.1) > 0.01, np.mean(bg < 0.1)
  assert np.mean(fg > 0.5) > 0.8, np.mean(fg > 0.5)
