r"""Speed, memory and scale benchmarks, each figure beside this machine's own ceiling.

  python tools/benchmark.py [--quick] [--only=NAME,...] --output_json=OUT.json

Every benchmark runs in its own child process (so `peak_rss_mb` is its own), on THUMOS14-like data generated in
a temporary directory, and reports the median of several repetitions after a warm-up. OUT.json:
  {"machine": {...}, "results": {NAME: {"value", "unit", "min", "max", "peak_rss_mb", ...}}}
"""

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_QUICK = flags.DEFINE_bool("quick", False, "tiny sizes and few repetitions: a smoke check (< 2 min).")
_ONLY = flags.DEFINE_list("only", [], "benchmarks to run (default: all).")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "where to write the results.")
_CHILD = flags.DEFINE_string("child", None, "internal: run one benchmark and print its JSON.")

MODEL_GIN = {"stpn": "stpn.gin", "bgm": "bgm.gin", "aumn": "aumn.gin", "hamnet": "hamnet.gin"}
FEATURE_RATE = 25.0 / 16.0


def _sizes(quick):
  if quick:
    return dict(videos=16, length=40, reps=2, steps=2, eval_videos=8, scaling_videos=4)
  return dict(videos=128, length=330, reps=5, steps=10, eval_videos=212, scaling_videos=32)


def _stats(values, unit, **extra):
  values = sorted(values)
  return dict(value=values[len(values) // 2], unit=unit, min=values[0], max=values[-1], **extra)


def _random_dataset(path, num_videos, length, num_classes=20, dim=1024, seed=0):
  """THUMOS14-like shapes (lengths spread around `length`), random non-negative features, one class each."""
  import numpy as np
  from stpn_tf.data import schema
  rng = np.random.default_rng(seed)

  def videos(prefix, n):
    for i in range(n):
      t = max(4, int(rng.normal(length, length / 4)))
      c = i % num_classes
      yield schema.Video(f"{prefix}_{i:05d}", np.array([c]), t / FEATURE_RATE,
                         rng.random((t, dim), dtype=np.float32), rng.random((t, dim), dtype=np.float32),
                         np.array([[1.0, 3.0]], np.float32), np.array([c]))
  schema.write_dataset(path, {"train": videos("train", num_videos), "test": videos("test", max(2, num_videos // 8))},
                       [f"class{c}" for c in range(num_classes)], FEATURE_RATE, videos_per_shard=32)
  return path


def bench_matmul_gflops(sizes):
  """float32 matmul throughput at the shape of a dense layer over a batch of segments: the ceiling."""
  import tensorflow as tf
  m = 32 * 400 if not _QUICK.value else 2048
  a = tf.random.uniform((m, 1024))
  b = tf.random.uniform((1024, 256))
  f = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
  f(a, b).numpy()
  n = 20 if not _QUICK.value else 3
  rates = []
  for _ in range(sizes["reps"]):
    start = time.perf_counter()
    for _ in range(n):
      f(a, b).numpy()
    rates.append(n * 2 * m * 1024 * 256 / (time.perf_counter() - start) / 1e9)
  return _stats(rates, "GFLOP/s", shape=[m, 1024, 256])


def bench_input_pipeline(sizes):
  """Training input videos/s per stream (default sampler and batch of stpn.gin)."""
  from stpn_tf.data import pipeline
  out = {}
  with tempfile.TemporaryDirectory() as tmp:
    data = _random_dataset(os.path.join(tmp, "data"), sizes["videos"], sizes["length"])
    for streams in (("rgb",), ("rgb", "flow")):
      ds = pipeline.make_train_dataset(data, batch_size=32, streams=streams, seed=0)
      it = iter(ds)
      for _ in range(3):
        next(it)
      rates = []
      for _ in range(sizes["reps"]):
        start = time.perf_counter()
        for _ in range(sizes["steps"]):
          next(it)
        rates.append(sizes["steps"] * 32 / (time.perf_counter() - start))
      out["+".join(streams)] = _stats(rates, "videos/s")
  return dict(out["rgb"], both_streams_videos_per_s=out["rgb+flow"]["value"], segments_per_video=sizes["length"])


def _task_and_trainer(model, data_dir, quick):
  """The model's task and a Trainer as its gin file configures them (batch size, XLA or not)."""
  import gin
  import tensorflow as tf
  from stpn_tf import config
  from stpn_tf.data import schema
  from stpn_tf.training import trainer
  gin.clear_config()
  config.parse_gin([MODEL_GIN[model]], [], finalize=False)
  task = gin.query_parameter("train_eval.task").scoped_configurable_fn()
  batch = gin.query_parameter("train_eval.batch_size")
  try:
    jit_compile = gin.query_parameter("train_eval.jit_compile")
  except ValueError:   # not bound: train_eval's default
    jit_compile = True
  manifest = schema.read_manifest(data_dir)
  return task, trainer.Trainer(task, manifest, tf.distribute.get_strategy(), batch, jit_compile=jit_compile), batch


def flops_per_video(task, models, batch, num_segments, num_classes=20, dim=1024):
  """FLOPs of one training step per video, counted by TensorFlow's graph profiler on the step's own graph
  (forward, loss and gradients of every network, at batch x num_segments), divided by the batch size.

  The profiler counts every op with registered FLOP statistics (MatMul, Conv2D, BatchMatMul, elementwise ops), so
  AUMN's per-template value encoder (applied to K templates, not T segments) and HAM-Net's input gradients of
  inner layers are counted as they are computed, which a parameter-count estimate gets wrong.
  """
  import tensorflow as tf
  spec = {s: tf.TensorSpec([batch, num_segments, dim], tf.float32) for s in task.streams}
  spec.update(mask=tf.TensorSpec([batch, num_segments], tf.float32),
              labels=tf.TensorSpec([batch, num_classes], tf.float32))
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  total = 0
  for name, model in models.items():

    def step(inputs, model=model, name=name):
      with tf.GradientTape() as tape:
        outputs = model(task.network_inputs(name, inputs), training=True)
        loss = tf.reduce_sum(task.losses(name, outputs, inputs)["total"])
      return tape.gradient(loss, model.trainable_variables)

    graph = tf.function(step).get_concrete_function(spec).graph
    total += tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
  return total / batch


def bench_train(model, sizes, num_classes=20):
  """Training videos/s through the real input pipeline, the same step on batches held in memory (the model's
  compute alone), and the share of the matmul ceiling each reaches (from the step graph's own FLOP count)."""
  import gin
  import tensorflow as tf
  from stpn_tf.data import pipeline
  with tempfile.TemporaryDirectory() as tmp:
    data = _random_dataset(os.path.join(tmp, "data"), sizes["videos"], sizes["length"], num_classes=num_classes)
    task, trainer, batch = _task_and_trainer(model, data, _QUICK.value)
    ds = pipeline.make_train_dataset(data, batch_size=batch, streams=task.streams, seed=0)
    first = next(iter(ds))
    sampler = gin.query_parameter("make_train_dataset.sampler") if _bound("make_train_dataset.sampler") else None
    all_segments = sampler is not None and "AllSegments" in str(sampler)
    # Variable-length batches (all segments of a video): FLOPs at the mean video length.
    segments = sizes["length"] if all_segments else int(first["mask"].shape[1])
    it = iter(ds)
    trainer.train_steps(it, 2)
    rates = []
    for _ in range(sizes["reps"]):
      start = time.perf_counter()
      trainer.train_steps(it, sizes["steps"])
      rates.append(sizes["steps"] * batch / (time.perf_counter() - start))
    # The same step on one batch held in memory: no input pipeline sharing the cores.
    step_rates = []
    if not all_segments:
      memory = iter(tf.data.Dataset.from_tensors(first).repeat())
      trainer.train_steps(memory, 2)
      for _ in range(sizes["reps"]):
        start = time.perf_counter()
        trainer.train_steps(memory, sizes["steps"])
        step_rates.append(sizes["steps"] * batch / (time.perf_counter() - start))
    flops = flops_per_video(task, trainer.models, batch, segments, num_classes=num_classes)
    gin.clear_config()
  extra = dict(flops_per_video=flops, segments=segments, num_classes=num_classes, batch_size=batch,
               jit_compile=trainer.jit_compile, all_segments=all_segments)
  if step_rates:
    extra["step_only_videos_per_s"] = sorted(step_rates)[len(step_rates) // 2]
  return _stats(rates, "videos/s", **extra)


def _bound(selector):
  import gin
  try:
    gin.query_parameter(selector)
    return True
  except ValueError:
    return False


def bench_postprocess_eval(sizes):
  """Seconds for STPN post-processing (20 thresholds) plus mAP evaluation of a THUMOS14-test-sized set."""
  import numpy as np
  from stpn_tf import inference
  from stpn_tf.evaluation import detection
  from stpn_tf.postprocess import stpn_inference
  from stpn_tf.postprocess import types
  rng = np.random.default_rng(0)
  names = [f"class{c}" for c in range(20)]
  kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
  kernel /= kernel.sum()
  smooth = lambda x: np.apply_along_axis(lambda v: np.convolve(v, kernel, "same"), 0, x)
  videos = []
  for i in range(sizes["eval_videos"]):
    # Trained-model-like signals: ~16 action blocks covering ~30% of the video, smooth noise, 1-2 likely classes.
    t = sizes["length"]
    inside = np.zeros(t, bool)
    starts = np.sort(rng.choice(max(1, t - 8), 16, replace=False))
    for s0 in starts:
      inside[s0:s0 + int(rng.integers(2, 10))] = True
    classes = rng.choice(20, 2, replace=False)
    streams = []
    for _ in range(2):
      att = np.clip(smooth(0.15 + 0.7 * inside + 0.2 * rng.normal(size=t)), 0, 1)
      cam = smooth(rng.normal(-2, 1.5, (t, 20)))
      cam[:, classes] += 4 * inside[:, None]
      probs = rng.uniform(0, 0.12, 20)
      probs[classes] = rng.uniform(0.3, 0.95, 2)
      streams.append(types.StreamOutput(att, cam, probs))
    gt_starts = starts / FEATURE_RATE
    videos.append((f"v{i}", streams, gt_starts, np.full(16, classes[0])))
  thresholds = list(np.linspace(0.05, 0.95, 20))
  times = []
  for _ in range(sizes["reps"]):
    start = time.perf_counter()
    detections, gt = {}, []
    for vid, (rgb, flow), starts, classes in videos:
      detections[vid] = stpn_inference.stpn_detect(rgb, flow, FEATURE_RATE, tcam_threshold=thresholds)
      gt.append(dict(video_id=vid, segments=np.stack([starts, starts + 3], 1), segment_labels=classes))
    gt_frame = inference.ground_truth_frame(gt, names)
    pred_frame = inference.predictions_frame(detections, names)
    detection.compute_detection_ap(gt_frame, pred_frame)
    times.append(time.perf_counter() - start)
  return _stats(times, "s", num_videos=len(videos), num_predictions=len(pred_frame), thresholds=len(thresholds))


def bench_scaling(sizes):
  """Training seconds per epoch against the number of videos, and evaluation seconds per video against T."""
  out = {"epoch_s_vs_videos": {}, "eval_ms_vs_T": {}}
  with tempfile.TemporaryDirectory() as tmp:
    for factor in (1, 2, 4):
      n = sizes["scaling_videos"] * factor
      data = _random_dataset(os.path.join(tmp, f"d{factor}"), n, sizes["length"])
      task, trainer, batch = _task_and_trainer("stpn", data, _QUICK.value)
      from stpn_tf.data import pipeline
      it = iter(pipeline.make_train_dataset(data, batch_size=batch, streams=task.streams, seed=0))
      trainer.train_steps(it, 1)
      steps = max(1, n // batch)
      start = time.perf_counter()
      trainer.train_steps(it, steps)
      out["epoch_s_vs_videos"][n] = (time.perf_counter() - start) * n / (steps * batch)
    lengths = (400, 1600, 6400) if not _QUICK.value else (50, 200)
    out["eval_ms_vs_T"] = _eval_ms_vs_length(trainer.models, lengths, sizes["reps"])
    if "aumn" in _available_models():
      aumn_task, aumn_trainer, _ = _task_and_trainer("aumn", data, _QUICK.value)
      out["aumn_eval_ms_vs_T"] = _eval_ms_vs_length(aumn_trainer.models, lengths, sizes["reps"])
      out["aumn_per_segment_ratio"] = _per_segment_ratio(out["aumn_eval_ms_vs_T"])
      del aumn_task
  ratio = _per_segment_ratio(out["eval_ms_vs_T"])
  return dict(value=ratio, unit="per-segment cost ratio (longest/shortest T)", min=ratio, max=ratio, **out)


def bench_export_latency(sizes, model="stpn"):
  """p50/p95 of single-video inference through the exported SavedModel, 5-minute video (470 segments): the
  `outputs` signature (the networks) and `detect` (networks plus the in-graph post-processor)."""
  import gin
  from stpn_tf import config
  from stpn_tf.serving import module
  from stpn_tf.training import trainer
  with tempfile.TemporaryDirectory() as tmp:
    data = _random_dataset(os.path.join(tmp, "data"), 8, 60)
    gin.clear_config()
    # Every class passes the video-level threshold: the post-processor's worst case (a 2-step model's scores
    # would otherwise reject most classes and time an almost empty `detect`).
    config.parse_gin([MODEL_GIN[model]], ["train_eval.batch_size = 4", "train_eval.eval_every = 0",
                                          "train_eval.final_evaluation = False",
                                          f"{model}_detect.class_threshold = 0.0"], finalize=False)
    trainer.train_eval(os.path.join(tmp, "run"), data, num_steps=2)
    module.export_saved_model(os.path.join(tmp, "run"), os.path.join(tmp, "export"), data)
    latency = module.measure_latency(os.path.join(tmp, "export"), num_segments=470,
                                     repeats=50 if not _QUICK.value else 5)
  out = latency["outputs"]
  return dict(value=out["p95_ms"], unit="ms (p95, outputs)", min=out["min_ms"], max=out["max_ms"],
              p50_ms=out["p50_ms"], detect_p50_ms=latency["detect"]["p50_ms"],
              detect_p95_ms=latency["detect"]["p95_ms"], num_segments=470, model=model,
              num_detections=latency.get("num_detections"))


BENCHMARKS = {
    "matmul_gflops": bench_matmul_gflops,
    "input_pipeline": bench_input_pipeline,
    "postprocess_eval": bench_postprocess_eval,
    "scaling": bench_scaling,
    "export_latency": bench_export_latency,
}


def _available_models():
  from stpn_tf import config
  return [m for m, g in MODEL_GIN.items() if os.path.exists(os.path.join(config.GIN_SEARCH_PATHS[0], g))]


def _run_child(name):
  sizes = _sizes(_QUICK.value)
  if name.startswith("export_latency_"):
    result = bench_export_latency(sizes, model=name[len("export_latency_"):])
  elif name.startswith("train_"):
    model, _, classes = name[len("train_"):].partition("_c")   # train_<model>[_c<number of classes>]
    result = bench_train(model, sizes, num_classes=int(classes or 20))
  else:
    result = BENCHMARKS[name](sizes)
  result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
  print("BENCHMARK_RESULT " + json.dumps(result), flush=True)


def _machine():
  import numpy as np
  return dict(platform=platform.platform(), processor=platform.processor() or platform.machine(),
              cpus=os.cpu_count(), python=platform.python_version(), numpy=np.__version__,
              date=time.strftime("%Y-%m-%d %H:%M:%S"), commit=_commit(),
              load_average_at_start=list(os.getloadavg()))


def _commit():
  try:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
  except OSError:
    return ""


def main(argv):
  del argv
  if _CHILD.value:
    _run_child(_CHILD.value)
    return
  models = _available_models()
  # AUMN at ActivityNet's C = 200 too: its value encoder and classifiers grow with C (issue: memory at C = 200).
  names = list(BENCHMARKS) + [f"train_{m}" for m in models] + (["train_aumn_c200"] if "aumn" in models else [])
  names += [f"export_latency_{m}" for m in models if m != "stpn"]   # `export_latency` is STPN's
  if _ONLY.value:
    unknown = set(_ONLY.value) - set(names)
    if unknown:
      raise app.UsageError(f"unknown benchmarks {sorted(unknown)}; choose from {names}")
    names = [n for n in names if n in _ONLY.value]
  results = {}
  for name in names:
    start = time.time()
    cmd = [sys.executable, os.path.abspath(__file__), f"--child={name}"] + (["--quick"] if _QUICK.value else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("BENCHMARK_RESULT ")]
    if proc.returncode != 0 or not lines:
      results[name] = dict(value=None, unit="error", min=None, max=None, error=proc.stderr[-1500:])
    else:
      results[name] = json.loads(lines[-1][len("BENCHMARK_RESULT "):])
    print(f"{name:<18} {results[name]['value']!s:>12.12} {results[name]['unit']:<12} "
          f"({time.time() - start:.0f} s)", flush=True)
  report = {"machine": _machine(), "results": results}
  ceiling = (results.get("matmul_gflops") or {}).get("value")
  for name, r in results.items():
    if name.startswith("train_") and ceiling and r.get("flops_per_video") and r.get("value"):
      r["ceiling_videos_per_s"] = ceiling * 1e9 / r["flops_per_video"]
      r["fraction_of_ceiling"] = r["value"] / r["ceiling_videos_per_s"]
      if r.get("step_only_videos_per_s"):
        r["step_only_fraction_of_ceiling"] = r["step_only_videos_per_s"] / r["ceiling_videos_per_s"]
  print(_table(report))
  if _OUTPUT_JSON.value:
    tmp = _OUTPUT_JSON.value + ".tmp"
    with open(tmp, "w") as f:
      json.dump(report, f, indent=1)
    os.replace(tmp, _OUTPUT_JSON.value)


def _rounded(d):
  return {k: round(v, 2) for k, v in d.items()}


def _eval_ms_vs_length(models, lengths, reps):
  """Median ms of one forward pass of every network over a video of each length (batch 1)."""
  import numpy as np
  import tensorflow as tf
  fns = {k: tf.function(lambda x, m=m: m(x, training=False)) for k, m in models.items()}
  out = {}
  for length in lengths:
    inputs = {"features": tf.random.uniform((1, length, 1024)), "mask": tf.ones((1, length))}
    for f in fns.values():
      f(inputs)
    times = []
    for _ in range(reps):
      start = time.perf_counter()
      for f in fns.values():
        tf.nest.map_structure(lambda t: t.numpy(), f(inputs))
      times.append(1000 * (time.perf_counter() - start))
    out[length] = float(np.median(times))
  return out


def _per_segment_ratio(t):
  """Cost per segment at the longest vs the shortest video: ~1 when cost is linear in T."""
  lengths = sorted(t)
  return (t[lengths[-1]] / lengths[-1]) / (t[lengths[0]] / lengths[0])


def _table(report):
  lines = ["| benchmark | value | unit | min | max | peak RSS (MB) | notes |", "|---|---|---|---|---|---|---|"]
  for name, r in report["results"].items():
    fmt = lambda v: f"{v:.4g}" if isinstance(v, (int, float)) else str(v)
    notes = ""
    if "fraction_of_ceiling" in r:
      notes = (f"{100 * r['fraction_of_ceiling']:.0f}% of ceiling {r['ceiling_videos_per_s']:.1f} videos/s "
               f"({r['flops_per_video'] / 1e9:.2f} GFLOP/video, T {r['segments']}, batch {r['batch_size']}, "
               f"XLA {'on' if r.get('jit_compile') else 'off'})")
      if "step_only_fraction_of_ceiling" in r:
        notes += (f"; step alone (batch in memory): {r['step_only_videos_per_s']:.1f} videos/s = "
                  f"{100 * r['step_only_fraction_of_ceiling']:.0f}%")
    if "both_streams_videos_per_s" in r:
      notes = f"both streams: {r['both_streams_videos_per_s']:.0f} videos/s"
    if "detect_p95_ms" in r:
      notes = (f"{r.get('model', 'stpn')}: outputs p50 {r['p50_ms']:.1f} ms; detect p50 {r['detect_p50_ms']:.1f} / "
               f"p95 {r['detect_p95_ms']:.1f} ms ({r.get('num_detections')} detections, every class kept)")
    if "eval_ms_vs_T" in r:
      notes = (f"STPN eval ms vs T {_rounded(r['eval_ms_vs_T'])}; epoch s vs videos {_rounded(r['epoch_s_vs_videos'])}"
               f"; AUMN eval ms vs T {_rounded(r.get('aumn_eval_ms_vs_T', {}))} (per-segment ratio "
               f"{r.get('aumn_per_segment_ratio', float('nan')):.2f}: quadratic self-attention, by design)")
    lines.append(f"| {name} | {fmt(r.get('value'))} | {r.get('unit')} | {fmt(r.get('min'))} | {fmt(r.get('max'))} "
                 f"| {fmt(r.get('peak_rss_mb'))} | {notes} |")
  return "\n".join(lines)


if __name__ == "__main__":
  app.run(main)
