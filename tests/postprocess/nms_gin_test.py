"""`<model>_detect.nms` selects the suppression of every model through gin (stpn, bgm, aumn, hamnet)."""

import gin
import numpy as np
import pytest

from stpn_tf.models import aumn
from stpn_tf.models import bgm
from stpn_tf.models import hamnet
from stpn_tf.models import stpn
from stpn_tf.postprocess import aumn_inference
from stpn_tf.postprocess import bgm_inference
from stpn_tf.postprocess import hamnet_inference
from stpn_tf.postprocess import stpn_inference
from stpn_tf.postprocess import types as pp_types

RATE = 25.0 / 16.0


def _streams(rng, length=60, num_classes=4):
  def one():
    return pp_types.StreamOutput(rng.random(length), 3.0 * rng.standard_normal((length, num_classes)),
                                 rng.random(num_classes) + 0.2)
  return one(), one()


CASES = {
    "stpn": (stpn.stpn_detect, stpn_inference.stpn_detect, {"tcam_threshold": (0.2, 0.4)}),
    "bgm": (bgm.bgm_detect, bgm_inference.bgm_detect, {}),
    "aumn": (aumn.aumn_detect, aumn_inference.aumn_detect, {}),
    "hamnet": (hamnet.hamnet_detect, hamnet_inference.hamnet_detect, {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("method", ["soft_gaussian", "soft_linear"])
def test_gin_selects_soft_nms_for_every_model(name, method):
  configured, plain, extra = CASES[name]
  rng = np.random.default_rng(3)
  if name == "hamnet":
    args = (rng.random(60), 3.0 * rng.standard_normal((60, 5)), rng.random(4) + 0.2, RATE)
  else:
    args = (*_streams(rng), RATE)
  gin.parse_config([f"{name}_detect.{k} = {v!r}" for k, v in extra.items()]
                   + [f"{name}_detect.nms = '{method}'", f"{name}_detect.soft_nms_sigma = 0.3",
                      f"{name}_detect.nms_threshold = 0.3"])
  got = configured(*args)
  expected = plain(*args, **extra, nms=method, soft_nms_sigma=0.3, nms_threshold=0.3)
  greedy = plain(*args, **extra, nms_threshold=0.3)
  np.testing.assert_array_equal(got.score, expected.score)
  np.testing.assert_array_equal(got.start_s, expected.start_s)
  # Soft-NMS keeps what greedy NMS drops (decayed), so its list is longer here.
  assert len(expected) > len(greedy) > 0
