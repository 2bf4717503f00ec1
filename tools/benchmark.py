r"""Speed, memory and scale benchmarks, each figure beside this machine's own ceiling.

  python tools/benchmark.py [--quick] [--only=NAME,...] --output_json=OUT.json

Every benchmark runs in its own child process (so `peak_rss_mb` is its own), on THUMOS14-like data generated in
a temporary directory, and reports the median of several repetitions after a warm-up. OUT.json:
  {"machine": {...}, "results": {NAME: {"value", "unit", "min", "max", "peak_rss_mb", ...}}}

Training figures (`train_<model>[_c<C>][_authors|_budget][_bf16]`; `_budget`: the 2-CPU budget file
gin_configs/cpu/<model>.gin instead of the paper file; `_authors`: HAM-Net's authors' widths, now those of its paper
file, so only with --only): videos/s end to end (input pipeline included) and of
the step alone (batches held in memory), each as a fraction of a ceiling measured in the same process just before
and after, a float32 matmul at the model's dominant layer shape, from the FLOPs the compiled step really runs
(`tools/flops.py`); also as a fraction of the run's large square matmul (`matmul_gflops`). "machine" holds the CPU
model, the date, the commit and the load average at the start and end: on a shared machine the fractions hold
within one run only. The full table (a quiet machine, ~30-40 min):
  python tools/benchmark.py --output_json=/tmp/bench.json
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

import flops   # tools/flops.py, beside this script

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_QUICK = flags.DEFINE_bool("quick", False, "tiny sizes and few repetitions: a smoke check (< 2 min).")
_ONLY = flags.DEFINE_list("only", [], "benchmarks to run (default: all).")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "where to write the results.")
_CHILD = flags.DEFINE_string("child", None, "internal: run one benchmark and print its JSON.")
_GIN_PARAM = flags.DEFINE_multi_string("binding", [], "extra gin bindings for the training benchmarks, e.g. "
                                       "'train_eval.jit_compile = True'.")

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
  """The machine's ceiling: a large square float32 matmul (4096^3; --quick: 1024^3), with the bfloat16 one and
  STPN's dense-layer shape beside it. Each training benchmark also measures its own layer shape in its process."""
  del sizes
  n = 4096 if not _QUICK.value else 1024
  seconds = 2.0 if not _QUICK.value else 0.3
  square = matmul_rate(n, n, n, seconds)
  return dict(value=square, unit="GFLOP/s", min=square, max=square, shape=[n, n, n],
              square_bf16_gflops=matmul_rate(n, n, n, seconds, dtype="bfloat16"),
              stpn_layer_gflops=matmul_rate(32 * 400 if not _QUICK.value else 2048, 1024, 256, seconds),
              stpn_layer_shape=[32 * 400 if not _QUICK.value else 2048, 1024, 256])


def bench_input_pipeline(sizes):
  """Training input videos/s per stream (default sampler and batch of stpn.gin)."""
  from stpn_tf.data import pipeline
  out = {}
  with tempfile.TemporaryDirectory() as tmp:
    data = _random_dataset(os.path.join(tmp, "data"), sizes["videos"], sizes["length"])
    for streams, cache in ((("rgb",), False), (("rgb", "flow"), False), (("rgb", "flow"), True)):
      ds = pipeline.make_train_dataset(data, batch_size=32, streams=streams, seed=0, cache_decoded=cache)
      it = iter(ds)
      for _ in range(3):
        next(it)
      rates = []
      for _ in range(sizes["reps"]):
        start = time.perf_counter()
        for _ in range(sizes["steps"]):
          next(it)
        rates.append(sizes["steps"] * 32 / (time.perf_counter() - start))
      out["+".join(streams) + ("_cached" if cache else "")] = _stats(rates, "videos/s")
  return dict(out["rgb"], both_streams_videos_per_s=out["rgb+flow"]["value"],
              both_streams_cached_videos_per_s=out["rgb+flow_cached"]["value"], segments_per_video=sizes["length"])


def _task_and_trainer(model, data_dir, quick, bindings=(), precision="float32", budget=False):
  """The model's task and a Trainer as its gin file configures them (batch size, XLA or not), plus `bindings`
  (budget: the 2-CPU budget file gin_configs/cpu/<model>.gin instead of the paper file)."""
  import gin
  import tensorflow as tf
  from stpn_tf import config
  from stpn_tf.data import schema
  from stpn_tf.training import trainer
  gin.clear_config()
  config.parse_gin([("cpu/" if budget else "") + MODEL_GIN[model]], list(bindings), finalize=False)
  task = gin.query_parameter("train_eval.task").scoped_configurable_fn()
  batch = gin.query_parameter("train_eval.batch_size")
  try:
    jit_compile = gin.query_parameter("train_eval.jit_compile")
  except ValueError:   # not bound: train_eval's default
    jit_compile = True
  manifest = schema.read_manifest(data_dir)
  return task, trainer.Trainer(task, manifest, tf.distribute.get_strategy(), batch, jit_compile=jit_compile,
                               precision=precision), batch


def flops_per_video(task, models, batch, num_segments, num_classes=20, dim=1024):
  """FLOPs of one training step per video (forward, loss and the gradients of every network's variables, at
  batch x num_segments), from the ops the step graph really runs (`tools/flops.py`), divided by the batch size.

  AUMN's per-template value encoder (applied to K templates, not T segments) and HAM-Net's input gradients of
  inner layers are counted as they are computed, which a parameter-count estimate gets wrong; the first layers'
  unused input gradients are not.
  """
  import tensorflow as tf
  from stpn_tf.training import precision
  spec = {s: tf.TensorSpec([batch, num_segments, dim], tf.float32) for s in task.streams}
  spec.update(mask=tf.TensorSpec([batch, num_segments], tf.float32),
              labels=tf.TensorSpec([batch, num_classes], tf.float32))
  total = 0
  for name, model in models.items():

    def step(inputs, model=model, name=name):
      with tf.GradientTape() as tape:
        outputs = precision.to_float32(model(task.network_inputs(name, inputs), training=True))   # as the Trainer
        loss = tf.reduce_sum(task.losses(name, outputs, inputs)["total"])
      return loss, tape.gradient(loss, model.trainable_variables)   # the step returns its losses too

    total += flops.graph_flops(tf.function(step).get_concrete_function(spec).graph)
  return total / batch


def matmul_rate(m, k, n, seconds=1.0, dtype="float32"):
  """Median GFLOP/s of a compiled [m, k] x [k, n] matmul (a dense layer's shape; a temporal convolution of
  kernel size w over D channels is m = B*T, k = w*D), over 3 timed windows of ~`seconds` each."""
  import tensorflow as tf
  a = tf.cast(tf.random.uniform((m, k)), dtype)
  b = tf.cast(tf.random.uniform((k, n)), dtype)
  f = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
  f(a, b).numpy()
  start = time.perf_counter()
  f(a, b).numpy()
  reps = max(1, int(seconds / max(time.perf_counter() - start, 1e-6)))
  rates = []
  for _ in range(3):
    start = time.perf_counter()
    for _ in range(reps):
      f(a, b).numpy()
    rates.append(reps * 2 * m * k * n / (time.perf_counter() - start) / 1e9)
  return sorted(rates)[1]


def dominant_shape(model, task, batch, segments, dim=1024):
  """The (m, k, n) matmul of the model's largest layer at this batch: what its step's ceiling is measured at."""
  kw = getattr(task, "model_kwargs", {})
  if model == "hamnet":
    return (batch * segments, 3 * len(task.streams) * dim, int(kw["classifier_units"][0]))
  if model == "aumn":
    return (batch * segments, int(kw.get("embedding_kernel_size", 3)) * dim, int(kw.get("embedding_dim", 512)))
  return (batch * segments, dim, int(kw.get("hidden_units", 256)))   # STPN, BGM: the attention's first FC


# HAM-Net at the authors' code's widths (issue 20): 2048/2048, attention 512, batch 20 x 500 segments x 2048.
AUTHORS_WIDTHS = ("HAMNet.classifier_units = (2048, 2048)", "HAMNet.attention_units = 512",
                  "train_eval.batch_size = 20")
PRECISION_SUFFIX = {"bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def _rate(trainer, iterator, batch, sizes):
  rates = []
  for _ in range(sizes["reps"]):
    start = time.perf_counter()
    trainer.train_steps(iterator, sizes["steps"])
    rates.append(sizes["steps"] * batch / (time.perf_counter() - start))
  return rates


def bench_train(model, sizes, num_classes=20, authors=False, precision="float32", budget=False):
  """Training videos/s end to end (through the real input pipeline, the decoded split cached in memory as
  train_eval does by default) and of the step alone (the same compiled step on 4 batches held in memory), each
  as a fraction of the ceiling measured in this process, just before and after, at the model's dominant layer
  shape (`dominant_shape`), from the FLOPs the step graph really runs (`flops_per_video`)."""
  import gin
  import numpy as np
  import tensorflow as tf
  from stpn_tf.data import pipeline
  bindings = (AUTHORS_WIDTHS if authors else ()) + tuple(_GIN_PARAM.value)
  with tempfile.TemporaryDirectory() as tmp:
    data = _random_dataset(os.path.join(tmp, "data"), sizes["videos"], sizes["length"], num_classes=num_classes)
    task, trainer, batch = _task_and_trainer(model, data, _QUICK.value, bindings, precision, budget)
    sampler = gin.query_parameter("make_train_dataset.sampler") if _bound("make_train_dataset.sampler") else None
    all_segments = sampler is not None and "AllSegments" in str(sampler)
    ds = pipeline.make_train_dataset(data, batch_size=batch, streams=task.streams, seed=0, cache_decoded=True)
    memory_ds = ds.take(4).cache().repeat()
    widths = [int(b["mask"].shape[1]) for b in memory_ds.take(4)]
    # Variable-length (bucketed) batches: FLOPs at the mean padded length, what the step really computes.
    segments = int(round(np.mean(widths)))
    shape = dominant_shape(model, task, batch, segments)
    seconds = 0.2 if _QUICK.value else 1.0
    ceiling_before = matmul_rate(*shape, seconds=seconds)
    it = iter(ds)
    trainer.train_steps(it, 2)
    rates = _rate(trainer, it, batch, sizes)
    memory = iter(memory_ds)
    trainer.train_steps(memory, 4 if _QUICK.value else 6)     # compiles every bucket of the 4 batches
    step_rates = _rate(trainer, memory, batch, sizes)
    uncached = []
    if model == "stpn" and not _QUICK.value:   # the decode-once cache's effect (issue 20 item 2)
      it = iter(pipeline.make_train_dataset(data, batch_size=batch, streams=task.streams, seed=0))
      trainer.train_steps(it, 2)
      uncached = _rate(trainer, it, batch, sizes)
    ceiling_after = matmul_rate(*shape, seconds=seconds)
    ceiling_bf16 = matmul_rate(*shape, seconds=seconds, dtype="bfloat16") if precision == "mixed_bfloat16" else None
    step_flops = flops_per_video(task, trainer.models, batch, segments, num_classes=num_classes)
    gin.clear_config()
  ceiling = (ceiling_before + ceiling_after) / 2
  ceiling_videos = ceiling * 1e9 / step_flops
  median = lambda v: sorted(v)[len(v) // 2]
  extra = dict(flops_per_video=step_flops, segments=segments, num_classes=num_classes, batch_size=batch,
               jit_compile=trainer.jit_compile, all_segments=all_segments, precision=precision, authors=authors,
               ceiling_shape=list(shape), ceiling_gflops=ceiling, ceiling_gflops_before=ceiling_before,
               ceiling_gflops_after=ceiling_after, ceiling_videos_per_s=ceiling_videos,
               fraction_of_ceiling=median(rates) / ceiling_videos,
               step_only_videos_per_s=median(step_rates), step_only_min=min(step_rates),
               step_only_max=max(step_rates), step_only_fraction_of_ceiling=median(step_rates) / ceiling_videos)
  if ceiling_bf16:
    extra["ceiling_gflops_bf16"] = ceiling_bf16
  if uncached:
    extra["uncached_videos_per_s"] = median(uncached)
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
  elif name.startswith("train_"):   # train_<model>[_c<number of classes>][_authors|_budget][_bf16|_fp16]
    model, *options = name[len("train_"):].split("_")
    classes = [int(o[1:]) for o in options if o.startswith("c") and o[1:].isdigit()]
    precision = [PRECISION_SUFFIX[o] for o in options if o in PRECISION_SUFFIX]
    result = bench_train(model, sizes, num_classes=(classes or [20])[0], authors="authors" in options,
                         precision=(precision or ["float32"])[0], budget="budget" in options)
  else:
    result = BENCHMARKS[name](sizes)
  result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
  print("BENCHMARK_RESULT " + json.dumps(result), flush=True)


def _machine():
  import numpy as np
  return dict(platform=platform.platform(), processor=platform.processor() or platform.machine(),
              cpu_model=_cpu_model(), cpus=os.cpu_count(), python=platform.python_version(), numpy=np.__version__,
              date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), commit=_commit(),
              load_average_at_start=list(os.getloadavg()))


def _cpu_model():
  try:
    with open("/proc/cpuinfo") as f:
      names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
      f.seek(0)
      bf16 = "avx512_bf16" in f.read()
    return f"{names[0] if names else platform.processor()}{' (AVX-512 BF16)' if bf16 else ''}"
  except OSError:
    return platform.processor()


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
  names += [f"train_{m}_bf16" for m in models]
  if "hamnet" in models:   # hamnet.gin has the authors' widths (minutes per benchmark); also the budget file's
    names += ["train_hamnet_budget", "train_hamnet_budget_bf16"]
  names += ["train_hamnet_authors", "train_hamnet_authors_bf16"] if _ONLY.value else []   # == hamnet.gin's widths
  names += [f"export_latency_{m}" for m in models if m != "stpn"]   # `export_latency` is STPN's
  if _ONLY.value:
    unknown = set(_ONLY.value) - set(names)
    if unknown:
      raise app.UsageError(f"unknown benchmarks {sorted(unknown)}; choose from {names}")
    names = [n for n in names if n in _ONLY.value]
  elif _QUICK.value:
    names = [n for n in names if "_authors" not in n]
  results = {}
  load_at_start = list(os.getloadavg())
  for name in names:
    start = time.time()
    cmd = [sys.executable, os.path.abspath(__file__), f"--child={name}"] + (["--quick"] if _QUICK.value else [])
    cmd += [f"--binding={b}" for b in _GIN_PARAM.value]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("BENCHMARK_RESULT ")]
    if proc.returncode != 0 or not lines:
      results[name] = dict(value=None, unit="error", min=None, max=None, error=proc.stderr[-1500:])
    else:
      results[name] = json.loads(lines[-1][len("BENCHMARK_RESULT "):])
    print(f"{name:<18} {results[name]['value']!s:>12.12} {results[name]['unit']:<12} "
          f"({time.time() - start:.0f} s)", flush=True)
  report = {"machine": dict(_machine(), load_average_at_start=load_at_start, gin_params=list(_GIN_PARAM.value),
                            load_average_at_end=list(os.getloadavg())), "results": results}
  square = (results.get("matmul_gflops") or {}).get("value")
  for name, r in results.items():   # beside the in-process layer-shape ceiling: the run's square-matmul one
    if name.startswith("train_") and square and r.get("flops_per_video") and r.get("value"):
      r["fraction_of_square_ceiling"] = r["value"] * r["flops_per_video"] / (square * 1e9)
      r["step_only_fraction_of_square_ceiling"] = r["step_only_videos_per_s"] * r["flops_per_video"] / (square * 1e9)
    base = results.get(name[:-len("_bf16")]) if name.endswith("_bf16") else None
    if base and base.get("step_only_videos_per_s") and r.get("step_only_videos_per_s"):
      r["step_only_speedup_over_float32"] = r["step_only_videos_per_s"] / base["step_only_videos_per_s"]
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
      notes = (f"end to end {100 * r['fraction_of_ceiling']:.0f}%, step alone {r['step_only_videos_per_s']:.1f} "
               f"videos/s = {100 * r['step_only_fraction_of_ceiling']:.0f}% of the in-process ceiling "
               f"{r['ceiling_gflops']:.0f} GFLOP/s at {'x'.join(map(str, r['ceiling_shape']))} "
               f"({r['ceiling_videos_per_s']:.1f} videos/s; {r['flops_per_video'] / 1e9:.2f} GFLOP/video, "
               f"T {r['segments']}, batch {r['batch_size']}, XLA {'on' if r.get('jit_compile') else 'off'}, "
               f"{r.get('precision', 'float32')})")
      if "fraction_of_square_ceiling" in r:
        notes += (f"; of the square-matmul ceiling: end to end {100 * r['fraction_of_square_ceiling']:.0f}%, "
                  f"step {100 * r['step_only_fraction_of_square_ceiling']:.0f}%")
      if "uncached_videos_per_s" in r:
        notes += f"; end to end without the decoded-split cache {r['uncached_videos_per_s']:.1f} videos/s"
      if "step_only_speedup_over_float32" in r:
        notes += f"; step {r['step_only_speedup_over_float32']:.2f}x float32"
    if "both_streams_videos_per_s" in r:
      notes = (f"both streams: {r['both_streams_videos_per_s']:.0f} videos/s; decoded split cached: "
               f"{r.get('both_streams_cached_videos_per_s', float('nan')):.0f} videos/s")
    if "square_bf16_gflops" in r:
      notes = (f"square {'x'.join(map(str, r['shape']))}; bf16 {r['square_bf16_gflops']:.0f} GFLOP/s; STPN layer "
               f"{'x'.join(map(str, r['stpn_layer_shape']))}: {r['stpn_layer_gflops']:.0f} GFLOP/s")
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
