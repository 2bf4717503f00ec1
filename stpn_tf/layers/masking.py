"""Helpers that make every pooling and loss ignore padded segments (mask 0)."""

import tensorflow as tf


def apply_mask(values, mask):
  """Zeroes padded positions. values [B, T, ...], mask [B, T] or None (no padding)."""
  if mask is None:
    return values
  mask = tf.cast(mask, values.dtype)
  while len(mask.shape) < len(values.shape):
    mask = mask[..., None]
  return values * mask


def ones_mask(values):
  """An all-valid mask [B, T] for values [B, T, ...]."""
  return tf.ones(tf.shape(values)[:2], values.dtype)


def masked_mean(values, mask, axis=1):
  """Mean over time of values [B, T] counting only real segments; returns [B]."""
  if mask is None:
    return tf.reduce_mean(values, axis=axis)
  mask = tf.cast(mask, values.dtype)
  return tf.reduce_sum(values * mask, axis=axis) / tf.maximum(tf.reduce_sum(mask, axis=axis), 1.0)
