"""Temporal Gaussian smoothing G(sigma) * s_t, mask-aware (Nguyen, Ramanan, Fowlkes, ICCV 2019, Eqs. 6-7).

The paper smooths its top-down attention targets with "a Gaussian filter G(sigma)" along time and gives neither
sigma nor the kernel support nor the boundary rule. Here (decisions, see the model's gin file):
  * the kernel is a sampled Gaussian exp(-k^2 / (2 sigma^2)), k = -r..r with r = ceil(truncate * sigma), sigma and
    truncate in segments;
  * at the ends of a video the kernel is truncated to the real segments and renormalized (a *normalized
    convolution*): out_t = sum_s G(t - s) m_s v_s / sum_s G(t - s) m_s. A constant signal stays constant up to the
    video boundary, and a video padded with masked segments gives exactly the values it gives alone, so padded
    multi-video batches and one-video batches agree. Padded positions (mask 0) get 0.
"""

import math

import numpy as np
import tensorflow as tf


def gaussian_kernel(sigma: float, truncate: float = 3.0) -> np.ndarray:
  """The sampled, normalized Gaussian G(sigma) over k = -r..r, r = ceil(truncate * sigma). sigma = 0 gives [1].

  Args:
    sigma: standard deviation in segments, >= 0.
    truncate: support half-width in standard deviations, > 0.

  Returns:
    float64 array [2r + 1] summing to 1, symmetric.
  """
  if not np.isfinite(sigma) or sigma < 0:
    raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
  if not np.isfinite(truncate) or truncate <= 0:
    raise ValueError(f"truncate must be a finite number > 0, got {truncate}")
  if sigma == 0:
    return np.ones(1)
  radius = int(math.ceil(truncate * sigma))
  k = np.arange(-radius, radius + 1, dtype=np.float64)
  kernel = np.exp(-0.5 * (k / sigma) ** 2)
  return kernel / kernel.sum()


def gaussian_smooth(values, sigma: float, mask=None, truncate: float = 3.0):
  """G(sigma) * values along time (axis 1) with the kernel renormalized over real segments (module docstring).

  Args:
    values: [B, T] or [B, T, C] float tensor; channels are smoothed independently.
    sigma: Gaussian standard deviation in segments (0 = no smoothing, values are only masked).
    mask: [B, T], 1 for real segments, 0 for padding; None = all real.
    truncate: kernel half-width in standard deviations.

  Returns:
    A tensor shaped like `values`; padded positions are 0.
  """
  values = tf.convert_to_tensor(values)
  squeeze = values.shape.rank == 2
  x = values[..., None] if squeeze else values                                 # [B, T, C]
  mask = tf.ones(tf.shape(x)[:2], x.dtype) if mask is None else tf.cast(mask, x.dtype)
  kernel = gaussian_kernel(sigma, truncate)
  if kernel.size == 1:
    out = x * mask[..., None]
  else:
    # A 2-D convolution over (time, channel) with a [K, 1] kernel smooths every channel independently, with no
    # transpose: [B, T, C] -> [B, T, C, 1]. The kernel is symmetric, so the cross-correlation is the convolution;
    # "SAME" zero-pads r segments at both ends.
    filt = tf.constant(kernel[:, None, None, None], x.dtype)                   # [K, 1, 1, 1]
    num = tf.nn.conv2d((x * mask[..., None])[..., None], filt, 1, "SAME")[..., 0]   # [B, T, C]
    den = tf.nn.conv2d(mask[..., None, None], filt, 1, "SAME")[..., 0]               # [B, T, 1]
    # den >= G(0) > 0 at every real segment; the floor only guards padded positions (zeroed below).
    out = num / tf.maximum(den, 1e-12) * mask[..., None]
  return out[..., 0] if squeeze else out
