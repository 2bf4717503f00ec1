"""One seed makes a run reproducible; the validation holdout is carved from training videos only."""


import gin
import numpy as np
import pytest
import tensorflow as tf

from stpn_tf import config
from stpn_tf.data import pipeline
from stpn_tf.training import trainer
from tests import testing_utils

TINY = ["train_eval.batch_size = 4", "train_eval.checkpoint_every = 3", "train_eval.steps_per_loop = 1",
        "STPN.hidden_units = 8", "UniformPerturbedSampler.num_segments = 16", "train_eval.eval_every = 0",
        "STPN.dropout = 0.5"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("data")
  testing_utils.write_random_dataset(path, num_train=24, num_test=4, dim=16)
  return str(path)


def _train(data_dir, model_dir, params=()):
  gin.clear_config()
  config.parse_gin(["stpn.gin"], TINY + list(params))
  result = trainer.train_eval(str(model_dir), data_dir, num_steps=3)
  reader = tf.train.load_checkpoint(str(model_dir))
  weights = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
             if k.startswith(("rgb_model", "flow_model", "rgb_optimizer", "flow_optimizer"))}
  return result, weights


def test_same_seed_gives_identical_weights_and_metrics(data_dir, tmp_path):
  result_a, weights_a = _train(data_dir, tmp_path / "a", ["train_eval.seed = 7"])
  result_b, weights_b = _train(data_dir, tmp_path / "b", ["train_eval.seed = 7"])
  result_c, weights_c = _train(data_dir, tmp_path / "c", ["train_eval.seed = 8"])
  assert weights_a and weights_a.keys() == weights_b.keys()
  for k in weights_a:
    np.testing.assert_array_equal(weights_a[k], weights_b[k], err_msg=k)
  assert result_a == result_b
  # The seed matters: another seed starts from other weights and sees other batches.
  assert any(not np.array_equal(weights_a[k], weights_c[k]) for k in weights_a)
  # Op determinism is switched back off after the run (it is process-wide).
  assert not trainer._op_determinism_enabled()  # pylint: disable=protected-access


def _video_ids(dataset):
  return sorted(v.decode() for batch in dataset for v in batch["video_id"].numpy())


def test_holdout_is_a_seeded_disjoint_part_of_the_split(data_dir):
  holdout = pipeline.Holdout(0.3, seed=0)
  everything = _video_ids(pipeline.make_eval_dataset(data_dir, "train", batch_size=4))
  held_out = _video_ids(pipeline.make_eval_dataset(data_dir, "train", batch_size=4, holdout=holdout))
  trained = _video_ids(pipeline.make_train_dataset(data_dir, batch_size=4, seed=0, repeat=False, holdout=holdout))
  assert 0 < len(held_out) < len(everything)
  assert not set(held_out) & set(trained)
  assert sorted(held_out + trained) == everything
  # Fixed by the seed, and another seed draws another validation set.
  assert held_out == _video_ids(pipeline.make_eval_dataset(data_dir, "train", batch_size=4, holdout=holdout))
  other = _video_ids(pipeline.make_eval_dataset(data_dir, "train", batch_size=4,
                                                holdout=pipeline.Holdout(0.3, seed=1)))
  assert other != held_out


def test_holdout_fraction_is_checked():
  with pytest.raises(ValueError, match="validation fraction"):
    pipeline.Holdout(1.0)


def test_validation_evaluation_never_reads_the_test_split(data_dir, tmp_path, monkeypatch):
  from stpn_tf import inference
  seen = []
  real = inference.predict_videos

  def spy(task, models, data_dir, split, *args, **kwargs):
    seen.append((split, kwargs.get("holdout")))
    return real(task, models, data_dir, split, *args, **kwargs)

  monkeypatch.setattr(inference, "predict_videos", spy)
  _train(data_dir, tmp_path / "v", ["train_eval.validation_fraction = 0.3", "train_eval.eval_every = 3",
                                      "train_eval.final_evaluation = False"])
  assert seen and all(split == "train" and holdout is not None for split, holdout in seen)
  events = tf.io.gfile.glob(str(tmp_path / "v" / "validation" / "events.*"))
  tags = {v.tag for path in events for e in tf.compat.v1.train.summary_iterator(path) for v in e.summary.value}
  assert "validation/classification_mAP" in tags
  # A few validation videos drawn as images (matplotlib is in the test extra).
  assert any(t.startswith("validation_videos/") for t in tags), tags
  operative = open(tmp_path / "v" / "operative_config.gin").read()
  assert "validation_fraction = 0.3" in operative


def _weights_after(data_dir, model_dir, stops, params=()):
  """Trains with the given --num_steps one run after the other (each a resume of the last); the final weights."""
  for num_steps in stops:
    gin.clear_config()
    config.parse_gin(["stpn.gin"], TINY + ["train_eval.final_evaluation = False"] + list(params))
    trainer.train_eval(str(model_dir), data_dir, num_steps=num_steps)
  gin.clear_config()
  reader = tf.train.load_checkpoint(str(model_dir))
  assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == stops[-1]
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith(("rgb_model", "flow_model", "rgb_optimizer", "flow_optimizer"))}


def test_item9_resume_identical_to_uninterrupted(data_dir, tmp_path):
  # Stopped at step 2 of 4 (a kill after the checkpoint at step 2 leaves the same directory), then resumed.
  # 24 videos, batch 4: the stop falls inside the first pass over the data, where the shuffle buffer matters.
  # Before the fix (input stream restarted, dropout seed state not saved) an optimizer moment differed by 2e-3.
  uninterrupted = _weights_after(data_dir, tmp_path / "a", [4])
  resumed = _weights_after(data_dir, tmp_path / "b", [2, 4])
  assert uninterrupted.keys() == resumed.keys()
  for k in uninterrupted:
    np.testing.assert_array_equal(resumed[k], uninterrupted[k], err_msg=k)
  reader = tf.train.load_checkpoint(str(tmp_path / "b"))
  assert "input_iterator/.ATTRIBUTES/ITERATOR_STATE" in reader.get_variable_to_shape_map()
