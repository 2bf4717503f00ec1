r"""Benchmarks the feature converters on a generated THUMOS14-sized release (a script, not a test).

  python tools/benchmark_convert.py [--formats=wtalc,per_video] [--videos=412] [--segments=137000] \
      [--work_dir=/tmp] [--output_json=OUT.json]

For each format: a child process writes a fake release of `--videos` videos with `--segments` feature rows in
total ([T, 2048] float32, RGB then flow; THUMOS14 is 412 videos, ~137,000 rows, ~1.1 GB) into a temporary folder
under --work_dir; this process then converts it with stpn_tf.data.converters and reports the wall time, the
peak RSS (resource.getrusage, so the generator's memory does not count) and where the time went; the folder is
deleted afterwards. `bench_convert(fmt, sizes)` returns the dict layout of tools/benchmark.py
({"value", "unit", "min", "max", "peak_rss_mb", ...}) so that harness can register it.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_FORMATS = flags.DEFINE_list("formats", ["wtalc", "per_video"], "Formats to benchmark: wtalc, per_video, hdf5.")
_VIDEOS = flags.DEFINE_integer("videos", 412, "Videos in the fake release.")
_SEGMENTS = flags.DEFINE_integer("segments", 137_000, "Feature rows over all videos.")
_WORK_DIR = flags.DEFINE_string("work_dir", None, "Where the temporary release and dataset go (default: $TMPDIR).")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Where to write the results (JSON).")
_GENERATE = flags.DEFINE_string("generate", None, "internal: write a fake release of this format into --into.")
_INTO = flags.DEFINE_string("into", None, "internal: folder for --generate.")
_CHILD = flags.DEFINE_string("child", None, "internal: benchmark this one format and print its JSON.")

DIM = 1024                     # per stream
RATE = 25.0 / 16.0
NUM_CLASSES = 20


def _lengths(num_videos, total_rows, rng):
  """THUMOS14-like spread of video lengths (log-normal), scaled to sum to total_rows exactly."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  raw = rng.lognormal(mean=0.0, sigma=0.8, size=num_videos)
  rows = np.maximum(8, np.floor(raw / raw.sum() * total_rows)).astype(int)
  rows[np.argmax(rows)] += total_rows - rows.sum()
  return rows


def _annotations(num_videos, lengths, rng):
  """THUMOS14 conventions: first half "validation" (train), the rest "test"; 1-5 instances per video."""
  videos = []
  for i, rows in enumerate(lengths):
    duration = float(rows) / RATE
    subset = "validation" if i < num_videos // 2 else "test"
    label = f"class{i % NUM_CLASSES:02d}"
    segments = []
    for _ in range(int(rng.integers(1, 6))):
      start = float(rng.uniform(0, duration * 0.9))
      segments.append([round(start, 1), round(min(duration, start + rng.uniform(0.5, 10.0)), 1)])
    videos.append(dict(name=f"video_{subset}_{i:07d}", subset=subset, duration=duration, labels=[label],
                       segments=segments))
  return videos


def generate(fmt, folder, num_videos, total_rows, seed=0):
  """Writes a fake release of `fmt` into folder; returns the converter arguments (paths)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  lengths = _lengths(num_videos, total_rows, rng)
  videos = _annotations(num_videos, lengths, rng)
  os.makedirs(folder, exist_ok=True)

  def features(rows):
    return rng.random((rows, 2 * DIM), dtype=np.float32)   # [T, 2048], RGB then flow

  if fmt == "wtalc":
    ann = os.path.join(folder, "Thumos14reduced-Annotations")
    os.makedirs(ann)

    def obj(items):
      out = np.empty(len(items), object)
      for i, x in enumerate(items):
        out[i] = x
      return out
    np.save(os.path.join(ann, "videoname.npy"), np.array([v["name"].encode() for v in videos]))
    np.save(os.path.join(ann, "subset.npy"), np.array([v["subset"].encode() for v in videos]))
    np.save(os.path.join(ann, "classlist.npy"), np.array([f"class{c:02d}".encode() for c in range(NUM_CLASSES)]))
    np.save(os.path.join(ann, "duration.npy"), np.array([[v["duration"]] for v in videos]))
    np.save(os.path.join(ann, "labels.npy"), obj([v["labels"] * len(v["segments"]) for v in videos]))
    np.save(os.path.join(ann, "labels_all.npy"), obj([v["labels"] for v in videos]))
    np.save(os.path.join(ann, "segments.npy"), obj([v["segments"] for v in videos]))
    path = os.path.join(folder, "Thumos14reduced-I3D-JOINTFeatures.npy")
    np.save(path, obj([features(rows) for rows in lengths]), allow_pickle=True)
    return {"features": path, "annotations": ann}
  database = {v["name"]: {"subset": v["subset"], "duration": v["duration"],
                          "annotations": [{"label": v["labels"][0], "segment": s} for s in v["segments"]]}
              for v in videos}
  gt = os.path.join(folder, "gt.json")
  with open(gt, "w") as f:
    json.dump({"database": database}, f)
  if fmt == "per_video":
    for stream in ("rgb", "flow"):
      os.makedirs(os.path.join(folder, "features", stream))
    for v, rows in zip(videos, lengths):
      x = features(rows)
      np.save(os.path.join(folder, "features", "rgb", v["name"] + ".npy"), x[:, :DIM])
      np.save(os.path.join(folder, "features", "flow", v["name"] + ".npy"), x[:, DIM:])
    return {"features_dir": os.path.join(folder, "features"), "ground_truth": gt}
  if fmt == "hdf5":
    import h5py  # pylint: disable=import-outside-toplevel
    path = os.path.join(folder, "features.h5")
    with h5py.File(path, "w") as f:
      for v, rows in zip(videos, lengths):
        x = features(rows)
        f[v["name"] + "/rgb"] = x[:, :DIM]
        f[v["name"] + "/flow"] = x[:, DIM:]
    return {"features": path, "ground_truth": gt}
  raise ValueError(f"unknown format {fmt!r}")


def _peak_rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def _serialize_throughput(videos):
  """MB/s of schema.serialize_video alone, over a few in-memory videos (to say whether it is the bottleneck)."""
  from stpn_tf.data import schema  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  nbytes = 0
  for video in videos:
    schema.serialize_video(video)
    nbytes += video.rgb.nbytes + video.flow.nbytes
  return nbytes / 1e6 / (time.perf_counter() - start)


def bench_convert(fmt, sizes=None, work_dir=None):
  """Generates a release in a child process, converts it here, and reports time and memory.

  Args:
    fmt: "wtalc", "per_video" or "hdf5".
    sizes: {"videos": n, "segments": rows} (tools/benchmark.py passes its own dict; missing keys take the
      THUMOS14 sizes 412 / 137,000).
    work_dir: parent of the temporary folder.

  Returns:
    dict(value=seconds, unit="s", min, max, peak_rss_mb, baseline_rss_mb, videos_per_s, mb_per_s, phases, ...).
  """
  from stpn_tf.data import converters  # pylint: disable=import-outside-toplevel
  from stpn_tf.data import schema  # pylint: disable=import-outside-toplevel
  sizes = dict(sizes or {})
  num_videos = int(sizes.get("convert_videos", sizes.get("videos_total", 412)))
  total_rows = int(sizes.get("convert_segments", 137_000))
  with tempfile.TemporaryDirectory(dir=work_dir, prefix="bench_convert_") as tmp:
    release = os.path.join(tmp, "release")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), f"--generate={fmt}", f"--into={release}",
                           f"--videos={num_videos}", f"--segments={total_rows}"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
      raise RuntimeError(f"generator failed: {proc.stderr[-2000:]}")
    paths = json.loads(proc.stdout.strip().splitlines()[-1])
    generate_s = time.perf_counter() - t0
    input_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(release) for f in fs)
    baseline = _peak_rss_mb()
    out = os.path.join(tmp, "dataset")
    options = converters.ConversionOptions(log_every=100)
    start = time.perf_counter()
    if fmt == "wtalc":
      report = converters.convert_wtalc(paths["features"], paths["annotations"], out, None, options)
    elif fmt == "per_video":
      report = converters.convert_per_video(paths["features_dir"], paths["ground_truth"], out, RATE, options)
    else:
      report = converters.convert_hdf5(paths["features"], paths["ground_truth"], out, RATE, options)
    seconds = time.perf_counter() - start
    peak = _peak_rss_mb()
    output_bytes = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    # serialize_video alone, on the first videos read back (a few hundred MB at most).
    sample, nbytes = [], 0
    for video in schema.read_videos(out, "train"):
      sample.append(video)
      nbytes += video.rgb.nbytes * 2
      if len(sample) >= 12 or nbytes > 200e6:
        break
    serialize_mb_s = _serialize_throughput(sample)
  mb = report.feature_bytes / 1e6
  return dict(value=round(seconds, 2), unit="s", min=round(seconds, 2), max=round(seconds, 2),
              peak_rss_mb=round(peak, 1), baseline_rss_mb=round(baseline, 1), format=fmt, videos=num_videos,
              segments=total_rows, feature_mb=round(mb, 1), input_mb=round(input_bytes / 1e6, 1),
              output_mb=round(output_bytes / 1e6, 1), videos_per_s=round(num_videos / seconds, 1),
              mb_per_s=round(mb / seconds, 1), phases=report.seconds, generate_s=round(generate_s, 1),
              serialize_video_mb_per_s=round(serialize_mb_s, 1),
              serialize_video_s_estimate=round(mb / serialize_mb_s, 2), status=report.status,
              skipped=report.num_skipped, cpu_count=os.cpu_count(), load_average=os.getloadavg()[0])


def main(argv):
  del argv
  if _GENERATE.value:
    print(json.dumps(generate(_GENERATE.value, _INTO.value, _VIDEOS.value, _SEGMENTS.value)))
    return 0
  sizes = {"convert_videos": _VIDEOS.value, "convert_segments": _SEGMENTS.value}
  if _CHILD.value:
    print(json.dumps(bench_convert(_CHILD.value, sizes, _WORK_DIR.value)))
    return 0
  results = {}
  for fmt in _FORMATS.value:
    # One process per format: peak RSS is a high-water mark, so formats must not share one.
    cmd = [sys.executable, os.path.abspath(__file__), f"--child={fmt}", f"--videos={_VIDEOS.value}",
           f"--segments={_SEGMENTS.value}"] + ([f"--work_dir={_WORK_DIR.value}"] if _WORK_DIR.value else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
      print(f"convert_{fmt} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
      continue
    results[f"convert_{fmt}"] = r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"convert_{fmt}: {r['value']:.1f} s ({r['videos_per_s']} videos/s, {r['mb_per_s']} MB/s), peak RSS "
          f"{r['peak_rss_mb']:.0f} MB (baseline {r['baseline_rss_mb']:.0f} MB), phases {r['phases']}, "
          f"serialize_video {r['serialize_video_mb_per_s']} MB/s (~{r['serialize_video_s_estimate']} s of the "
          f"total), load average {r['load_average']:.1f}", flush=True)
  if _OUTPUT_JSON.value:
    with open(_OUTPUT_JSON.value, "w") as f:
      json.dump({"results": results}, f, indent=1)
  return 0


if __name__ == "__main__":
  app.run(main)
