"""Indices and masks of every sampling strategy (stpn_tf/data/sampling.py)."""

import numpy as np
import pytest
import tensorflow as tf

from stpn_tf.data import sampling

SEED = tf.constant([3, 4], tf.int64)


def _run(sampler, length, seed=SEED):
  idx, mask = sampler(tf.constant(length), seed)
  return idx.numpy(), mask.numpy()


def test_uniform_perturbed_one_index_per_bin():
  idx, mask = _run(sampling.UniformPerturbedSampler(num_segments=10), 100)
  assert mask.tolist() == [1.0] * 10
  # Bin i covers [10 i, 10 i + 10): exactly one index in each.
  np.testing.assert_array_equal(idx // 10, np.arange(10))
  idx2, _ = _run(sampling.UniformPerturbedSampler(num_segments=10), 100, tf.constant([9, 9], tf.int64))
  assert not np.array_equal(idx, idx2)          # the perturbation is random


def test_uniform_without_perturbation_takes_bin_centres():
  idx, _ = _run(sampling.UniformPerturbedSampler(num_segments=4, perturb=False), 8)
  np.testing.assert_array_equal(idx, [1, 3, 5, 7])


def test_uniform_uneven_bins_stay_in_range():
  idx, _ = _run(sampling.UniformPerturbedSampler(num_segments=7), 9)
  edges = np.linspace(0, 9, 8)
  assert np.all(idx >= np.floor(edges[:-1])) and np.all(idx < np.ceil(edges[1:]))
  assert idx.max() <= 8


@pytest.mark.parametrize("sampler", [sampling.UniformPerturbedSampler(num_segments=6),
                                     sampling.RandomWindowSampler(num_segments=6),
                                     sampling.RandomSubsetSampler(num_segments=6)])
def test_short_video_is_padded_with_mask(sampler):
  idx, mask = _run(sampler, 4)
  np.testing.assert_array_equal(idx, [0, 1, 2, 3, 0, 0])
  np.testing.assert_array_equal(mask, [1, 1, 1, 1, 0, 0])


def test_random_window_is_contiguous_and_inside():
  idx, mask = _run(sampling.RandomWindowSampler(num_segments=5), 50)
  assert mask.sum() == 5
  np.testing.assert_array_equal(np.diff(idx), np.ones(4))
  assert idx[0] >= 0 and idx[-1] < 50


def test_random_subset_sorted_distinct():
  idx, mask = _run(sampling.RandomSubsetSampler(num_segments=20), 30)
  assert len(set(idx.tolist())) == 20 and np.all(np.diff(idx) > 0) and idx.max() < 30
  assert mask.sum() == 20


def test_all_segments():
  idx, mask = _run(sampling.AllSegmentsSampler(bucket_ratio=None), 7)
  np.testing.assert_array_equal(idx, np.arange(7))
  assert mask.sum() == 7


def test_all_segments_bucketed_pads_to_the_next_bucket():
  sampler = sampling.AllSegmentsSampler(bucket_ratio=1.5, min_bucket=10, multiple=4)
  assert sampler.buckets[:5] == [12, 20, 32, 48, 72]     # 10 -> 12; 12 * 1.5 = 18 -> 20; 30 -> 32; 48; 72
  for length, bucket in ((1, 12), (12, 12), (13, 20), (33, 48), (72, 72)):
    idx, mask = _run(sampler, length)
    assert len(idx) == len(mask) == bucket
    np.testing.assert_array_equal(idx[:length], np.arange(length))
    np.testing.assert_array_equal(mask, (np.arange(bucket) < length).astype(np.float32))
    np.testing.assert_array_equal(idx[length:], 0)
  longest = sampler.buckets[-1] + 1                     # past the last bucket: its own length
  assert int(sampler.bucket_length(longest)) == longest


def test_same_seed_same_indices():
  s = sampling.RandomSubsetSampler(num_segments=8)
  np.testing.assert_array_equal(_run(s, 40)[0], _run(s, 40)[0])
