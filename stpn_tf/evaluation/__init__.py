"""Evaluation of temporal action localization (NumPy/pandas only, no TensorFlow).

* `detection`: ActivityNet-protocol temporal detection mAP (`DetectionEvaluator`, `compute_detection_ap`,
  `score_files`).
* `classification`: video-level classification mAP.
* `attention_health`: per-network attention statistics, the per-video attention AUC and the collapse guard.
* `io`: ActivityNet-format JSON loading/writing (`load_ground_truth`, `load_predictions`,
  `write_predictions_json`).
"""

from stpn_tf.evaluation.classification import ClassificationEvaluator
from stpn_tf.evaluation.classification import classification_average_precision
from stpn_tf.evaluation.classification import classification_map
from stpn_tf.evaluation.detection import ACTIVITYNET_TIOU_THRESHOLDS
from stpn_tf.evaluation.detection import AVERAGE_RANGES
from stpn_tf.evaluation.detection import DetectionEvaluator
from stpn_tf.evaluation.detection import DetectionResult
from stpn_tf.evaluation.detection import THUMOS14_TIOU_THRESHOLDS
from stpn_tf.evaluation.detection import average_precision
from stpn_tf.evaluation.detection import compute_detection_ap
from stpn_tf.evaluation.detection import interval_tiou
from stpn_tf.evaluation.detection import range_averages
from stpn_tf.evaluation.detection import score_files
from stpn_tf.evaluation.io import EvaluationInputError
from stpn_tf.evaluation.io import load_ground_truth
from stpn_tf.evaluation.io import load_predictions
from stpn_tf.evaluation.io import parse_video_list
from stpn_tf.evaluation.io import write_json_atomic
from stpn_tf.evaluation.io import write_predictions_json
