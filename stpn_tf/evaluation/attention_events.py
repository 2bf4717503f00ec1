"""Where a network's attention goes, by what the built-in synthetic data put in each segment. (NumPy only.)

The attention health (attention_health.py) says whether an attention ranks ground-truth segments above the rest;
on the built-in data we also know what the rest is: every segment of a synthetic video is covered by one kind of
event or by none (stpn_tf/data/synthetic.py `segment_event_kinds`): a labeled instance, an unlabeled true
instance, a distractor (a weak copy of a class), a non-target action, an instance's lead-in / follow-through
context, or plain background. Per network and kind this module reports the mean attention and the share of
segments above 0.5, so that a method whose detections over-run (BUILD_NOTES.md, "Towards v4") can be traced to
the background it takes for action: e.g. a class-agnostic foreground attention (Nguyen'19) that fires on
non-target actions, where STPN's sparse attention does not.
"""

from __future__ import annotations

from typing import Dict, Iterable, Mapping, Sequence, Tuple

import numpy as np

# Row order of the report; the last one covers segments no event covers at least half of.
KINDS = ("instance", "unlabeled_instance", "distractor", "other_action", "context", "background")


class AttentionByEvent:
  """Accumulates per-network, per-kind attention statistics over videos: `update(...)`, then `result()`."""

  def __init__(self, networks: Sequence[str], threshold: float = 0.5):
    self.networks = tuple(networks)
    self.threshold = float(threshold)
    shape = (len(self.networks), len(KINDS))
    self._count = np.zeros(shape, np.int64)
    self._sum = np.zeros(shape, np.float64)
    self._above = np.zeros(shape, np.int64)

  def update(self, network: str, attention: np.ndarray, kinds: np.ndarray) -> None:
    """Adds one video of one network: attention [T] and kind codes [T] (0..4 = KINDS[:5], -1 = background).

    Raises:
      ValueError: unknown network, lengths that differ, or a kind code outside -1..4.
    """
    if network not in self.networks:
      raise ValueError(f"unknown network {network!r}; this report has {list(self.networks)}")
    attention = np.asarray(attention, np.float64).reshape(-1)
    kinds = np.asarray(kinds).reshape(-1)
    if attention.shape != kinds.shape:
      raise ValueError(f"{network}: attention has {attention.size} segments, the event kinds {kinds.size}")
    if kinds.size and (kinds.min() < -1 or kinds.max() > len(KINDS) - 2):
      raise ValueError(f"{network}: event kind codes must be -1..{len(KINDS) - 2}, got {sorted(set(kinds))}")
    rows = np.where(kinds < 0, len(KINDS) - 1, kinds)                       # background -> last row
    i = self.networks.index(network)
    self._count[i] += np.bincount(rows, minlength=len(KINDS))
    self._sum[i] += np.bincount(rows, weights=attention, minlength=len(KINDS))
    self._above[i] += np.bincount(rows, weights=(attention > self.threshold), minlength=len(KINDS)).astype(np.int64)

  def result(self) -> Dict:
    """{"threshold": t, "networks": {network: {kind: {"segments", "mean", "share_above"}}}}; a kind without
    segments has mean and share_above None."""
    out = {}
    for i, name in enumerate(self.networks):
      out[name] = {}
      for j, kind in enumerate(KINDS):
        n = int(self._count[i, j])
        out[name][kind] = {"segments": n,
                           "mean": float(self._sum[i, j] / n) if n else None,
                           "share_above": float(self._above[i, j] / n) if n else None}
    return {"threshold": self.threshold, "networks": out}


def attention_by_event(videos: Iterable[Tuple[Mapping[str, np.ndarray], np.ndarray]], networks: Sequence[str],
                       threshold: float = 0.5) -> Dict:
  """The report over (per-network attention {network: [T]}, kind codes [T]) pairs, one per video."""
  acc = AttentionByEvent(networks, threshold)
  for attention, kinds in videos:
    for name in networks:
      acc.update(name, attention[name], kinds)
  return acc.result()


def format_result(result: Mapping) -> str:
  """A table: one row per event kind, per network the mean attention and the share above the threshold."""
  networks = list(result["networks"])
  t = result["threshold"]
  header = f"{'segments covered by':<20}" + "".join(f"{name + ': mean / > ' + format(t, 'g'):>26}"
                                                    for name in networks) + f"{'segments':>10}"
  lines = [header]
  for kind in KINDS:
    cells, count = [], 0
    for name in networks:
      r = result["networks"][name][kind]
      count = r["segments"]
      cells.append(f"{'-':>26}" if r["mean"] is None else f"{r['mean']:>17.2f} / {100 * r['share_above']:3.0f}%")
    lines.append(f"{kind:<20}" + "".join(cells) + f"{count:>10}")
  return "\n".join(lines)
