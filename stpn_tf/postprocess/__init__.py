"""Post-processing of per-video model outputs into temporal detections (NumPy only, no TensorFlow).

Small reusable pieces (connected components, interpolation, thresholded proposals, NMS, scoring rules) plus the
STPN pipeline built from them.
"""

from stpn_tf.postprocess.components import connected_components
from stpn_tf.postprocess.components import connected_components_batched
from stpn_tf.postprocess.nms import class_wise_nms
from stpn_tf.postprocess.nms import class_wise_soft_nms
from stpn_tf.postprocess.nms import interval_iou
from stpn_tf.postprocess.nms import suppress
from stpn_tf.postprocess.proposals import interpolate
from stpn_tf.postprocess.proposals import threshold_proposals
from stpn_tf.postprocess.scoring import aumn_score
from stpn_tf.postprocess.scoring import bgm_score
from stpn_tf.postprocess.scoring import outer_inner_contrast
from stpn_tf.postprocess.scoring import prefix_sums
from stpn_tf.postprocess.scoring import stpn_score
from stpn_tf.postprocess.scoring import window_means
from stpn_tf.postprocess.scoring import window_sums
from stpn_tf.postprocess.stpn_inference import fuse_probabilities
from stpn_tf.postprocess.stpn_inference import segments_to_seconds
from stpn_tf.postprocess.stpn_inference import stpn_detect
from stpn_tf.postprocess.types import Detections
from stpn_tf.postprocess.types import StreamOutput
