"""The course benchmark (`make bench`): where the time and memory go, against the course's budgets.

Usage::

    python -m hubhelpers.tooling.bench                # every notebook, then the micro-benchmarks
    python -m hubhelpers.tooling.bench --skip-course  # micro-benchmarks only; notebook rows from build/results.json
    python -m hubhelpers.tooling.bench --skip-serial  # the parallel course only (notebook rows from it, an upper bound)

Machines of one kind differ by 10-25% in speed, so every budget is judged on a normalised time: the bench first
times a fixed reference workload (``reference_seconds``: AdamW steps of the minimal GPT below on fixed batches, one
math thread, as every notebook kernel has), and a time measured here counts as ``seconds x calibration / reference``,
where the calibration is the reference's time on the machine the budgets were set on (Budgets.reference_s). A
machine 20% slower thus gets 20% more seconds; the table shows both figures, pass/fail uses the normalised one.
A machine's speed also drifts within the bench's half hour (10% and more on a shared host), so the reference is
read three times, before the parallel run, between the two course runs and after the serial one, and the median of
the readings (``reference_speed``) normalises every time.

Rows: the reference workload; each notebook's wall time and peak memory run one at a time (``--jobs 1``); the whole
course run serial and parallel (``--jobs 2``) and the speed-up; pretraining throughput of the base model with the
time split into data / forward / backward / optimizer, next to a minimal hand-written GPT of about the same
parameter count trained on the same token batches; generation throughput batched vs one prompt at a time; retrieval
latency (MiniLM + Chroma). It writes build/bench.json, compares each row with the previous build/bench.json (a
ratio, so a regression shows), rewrites the README course map's CPU-time column from the serial measurements
(``sync.update_readme``), and exits 1 when a budget is missed.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hubhelpers import models as M
from hubhelpers import pretrain as P
from hubhelpers import results as R
from hubhelpers import training as T
from hubhelpers import world as W
from hubhelpers.chains import minilm_embeddings
from hubhelpers.mixture import Mixture
from hubhelpers.models import load_model
from hubhelpers.params import check_int
from hubhelpers.retrieval import open_store
from hubhelpers.tasks import closed_book_questions
from hubhelpers.tooling import course
from hubhelpers.tooling.sync import update_readme

BENCH_FILE = "bench.json"
# reference_seconds() on the machine the budgets were set on (2 cores of this project's CI kind), 2026-12-03
REFERENCE_CALIBRATION_S = 1.09  # median of three runs here: 1.091, 1.114, 1.066 s


@dataclass(frozen=True)
class Budgets:
    """The course's performance budgets, in seconds on the calibration machine (2 cores, this project's CI kind)."""

    notebook_s: float = 90.0  # each notebook run alone (--jobs 1), every one of them: no exceptions
    course_s: float = 480.0  # the whole course, parallel (--jobs 2)
    peak_mb: float = 3072.0  # each notebook
    parallel_peak_mb: float = 6144.0  # two notebooks at once (bounded by the sum of the two largest peaks)
    reference_s: float = REFERENCE_CALIBRATION_S  # reference_seconds() on the calibration machine


# --------------------------------------------------------------------------- the reference workload
REFERENCE_SHAPE = {"vocab_size": 1024, "hidden": 128, "layers": 2, "heads": 4, "mlp": 768, "max_len": 128}


def reference_seconds(steps: int = 5, repeats: int = 5, batch_size: int = 32) -> float:
    """Median wall time of a fixed workload: `steps` AdamW steps of the minimal GPT (the shipped model's size) on
    fixed random batches, with one math thread as every notebook kernel (after one warm-up step)."""
    check_int("steps", steps)
    check_int("repeats", repeats)
    threads = torch.get_num_threads()
    torch.set_num_threads(course.THREADS_PER_NOTEBOOK)
    try:
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(0, REFERENCE_SHAPE["vocab_size"], (batch_size, REFERENCE_SHAPE["max_len"]),
                            generator=generator)
        torch.manual_seed(0)
        gpt = MinimalGPT(**REFERENCE_SHAPE)
        opt = torch.optim.AdamW(gpt.parameters(), lr=1e-3)

        def step() -> None:
            logits = gpt(ids[:, :-1])  # (batch, time - 1, vocab)
            loss = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    finally:
        torch.set_num_threads(threads)


def reference_speed(readings: Sequence[float], budgets: Budgets) -> dict:
    """The reference row of bench.json: every reading, their median, and the speed factor that median gives."""
    if not readings:
        raise ValueError("reference_speed needs at least one reading of the reference workload, got none")
    median = statistics.median(readings)
    return {"seconds": round(median, 4), "readings": [round(r, 4) for r in readings],
            "calibration_s": budgets.reference_s, "speed_factor": round(speed_factor(median, budgets), 3)}


def speed_factor(reference_s: float, budgets: Budgets) -> float:
    """Calibration seconds per second here: multiply a time measured here by it to compare it with a budget."""
    if not reference_s > 0:
        raise ValueError(f"reference_s must be positive, got {reference_s!r}")
    return budgets.reference_s / reference_s


# --------------------------------------------------------------------------- notebooks
def notebook_rows(results: Mapping[str, Mapping[str, Any]], budgets: Budgets = Budgets(),
                  speed: float = 1.0) -> list[dict]:
    """One row per notebook the runner measured: wall time (as measured and normalised by `speed`), peak memory,
    and whether both are within budget."""
    rows = []
    for name in sorted(results):
        entry = results[name]
        if "wall_s" not in entry or "peak_rss_mb" not in entry:
            continue
        limit, normalised = budgets.notebook_s, round(entry["wall_s"] * speed, 1)
        rows.append({"name": name, "wall_s": entry["wall_s"], "normalised_s": normalised,
                     "peak_rss_mb": entry["peak_rss_mb"], "limit_s": limit,
                     "ok": normalised <= limit and entry["peak_rss_mb"] <= budgets.peak_mb})
    return rows


def course_total(rows: Sequence[Mapping[str, Any]], parallel_s: float | None, jobs: int, budgets: Budgets = Budgets(),
                 speed: float = 1.0, serial_rows: bool = True, whole: bool = True) -> dict:
    """The whole course: its serial time (the sum over notebooks), its parallel wall time with `jobs` notebooks at
    once, the speed-up, and the parallel time (normalised by `speed`) and memory against their budgets.

    With serial_rows False the rows come from the parallel run itself: their sum is no serial time, so no speed-up.
    With whole False the run covered only some notebooks (--only): the times are reported, but a subset's time says
    nothing about the course's budget, so "ok" is None (not judged) instead of a pass.
    """
    serial = round(sum(row["wall_s"] for row in rows), 1) if serial_rows else None
    peaks = sorted((row["peak_rss_mb"] for row in rows), reverse=True)
    out: dict[str, Any] = {"serial_s": serial, "jobs": jobs, "limit_s": budgets.course_s, "whole_course": whole,
                           "parallel_peak_bound_mb": round(sum(peaks[:jobs]), 1),
                           "parallel_peak_limit_mb": budgets.parallel_peak_mb}
    if parallel_s is None:
        return {**out, "ok": False if whole else None}
    normalised = round(parallel_s * speed, 1)
    within = bool(rows) and normalised <= budgets.course_s and sum(peaks[:jobs]) <= budgets.parallel_peak_mb
    return {**out, "parallel_s": round(parallel_s, 1), "normalised_s": normalised,
            "speedup": round(serial / parallel_s, 2) if serial and parallel_s > 0 else None,
            "ok": within if whole else None}


# --------------------------------------------------------------------------- training throughput
class MinimalBlock(nn.Module):
    """One pre-norm transformer block: causal self-attention (fused QKV, SDPA), then a GELU MLP, each residual."""

    def __init__(self, hidden: int, heads: int, mlp: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.qkv, self.proj = nn.Linear(hidden, 3 * hidden, bias=False), nn.Linear(hidden, hidden, bias=False)
        self.up, self.down = nn.Linear(hidden, mlp, bias=False), nn.Linear(mlp, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, time, hidden) -> the same shape."""
        b, t, hidden = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, hidden // self.heads).unbind(2)  # (b, t, heads, d)
        att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, hidden))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class MinimalGPT(nn.Module):
    """A hand-written pre-norm GPT (LayerNorm, fused QKV, causal SDPA, GELU MLP, tied embeddings): the bench's
    reference for what the course's train() costs over the bare arithmetic of a model of the same size."""

    def __init__(self, vocab_size: int, hidden: int, layers: int, heads: int, mlp: int, max_len: int):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab_size, hidden), nn.Embedding(max_len, hidden)
        self.blocks = nn.ModuleList(MinimalBlock(hidden, heads, mlp) for _ in range(layers))
        self.ln = nn.LayerNorm(hidden)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids (batch, time) -> next-token logits (batch, time, vocab)."""
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.ln(x) @ self.tok.weight.T  # tied output layer


def _token_batches(tokenizer, steps: int, batch_size: int, seed: int) -> list:
    """Pre-encoded pretraining batches (the same for both models), `steps` of them."""
    sample = P.batch_sampler(W.make_world(), Mixture())
    batches = []
    for step in range(steps):
        examples = sample(random.Random(f"bench-{seed}-{step}"), 1.0, batch_size)
        batches.append(T.encode_examples(tokenizer, sorted(examples, key=lambda ex: len(ex.text))))
    return batches


def training_throughput(steps: int = 30, batch_size: int = 48, seed: int = 0) -> dict:
    """Tokens/s of the course's train() on the base preset (phase split) vs a minimal GPT on the same batches."""
    check_int("steps", steps, low=5)
    tokenizer = M.load_tokenizer("tinyworld")
    config = M.preset("base")
    torch.manual_seed(seed)
    model = M.build_model(config, tokenizer)
    cfg = T.TrainConfig(steps=steps, batch_size=batch_size, warmup_steps=1, eval_every=steps, seed=seed)
    course = T.train(model, tokenizer, P.batch_sampler(W.make_world(), Mixture()), cfg, progress=False)
    compute_s = sum(course.phase_s[p] for p in ("forward", "backward", "optimizer"))

    batches = _token_batches(tokenizer, steps, batch_size, seed)
    width = max(b["input_ids"].shape[1] for b in batches)
    # SwiGLU has three MLP matrices, a GELU MLP two: 1.5x wider gives the same MLP parameter count
    gpt = MinimalGPT(len(tokenizer), config.hidden_size, config.num_hidden_layers, config.num_attention_heads,
                     int(1.5 * config.intermediate_size), width)
    opt = torch.optim.AdamW(gpt.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    tokens, start = 0, time.perf_counter()
    for batch in batches:
        logits = gpt(batch["input_ids"])[:, :-1]
        loss = F.cross_entropy(logits.transpose(1, 2), batch["labels"][:, 1:], ignore_index=T.IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(gpt.parameters(), cfg.grad_clip)
        opt.step()
        tokens += int(batch["attention_mask"].sum())
    minimal_s = time.perf_counter() - start
    return {
        "steps": steps, "batch_size": batch_size,
        "course_params": M.count_parameters(model), "minimal_params": M.count_parameters(gpt),
        "course_tokens_per_s": round(course.tokens_seen / course.wall_s, 1),
        "course_compute_tokens_per_s": round(course.tokens_seen / compute_s, 1),
        "phase_fraction": {p: round(t / course.wall_s, 3) for p, t in course.phase_s.items()},
        "minimal_tokens_per_s": round(tokens / minimal_s, 1),
        "course_over_minimal": round((course.tokens_seen / compute_s) / (tokens / minimal_s), 3),
    }


# --------------------------------------------------------------------------- fixed cost per notebook
FIXED_COST_IMPORTS = ("import matplotlib.pyplot as plt", "from hubhelpers.models import load_model",
                      "from hubhelpers.results import Results", "from hubhelpers.training import train")


def fixed_cost_seconds(kernel: str = "python3") -> float:
    """Wall time of a notebook that only starts its kernel and imports what every lesson imports, run like a lesson
    (papermill, one math thread): the cost each notebook pays before its first line of lesson."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "00_fixed_cost.ipynb"
        nb = new_notebook(metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": kernel}})
        nb.cells = [new_code_cell("\n".join(FIXED_COST_IMPORTS))]
        nbformat.write(nb, path)
        run = course.run_notebook(path, Path(tmp) / "build", kernel, [])
        if not run.ok:
            raise RuntimeError(f"the fixed-cost notebook failed: {course.log_tail(run.log)}")
        return run.wall_s


# --------------------------------------------------------------------------- generation and retrieval
def generation_throughput(n_prompts: int = 16, new_tokens: int = 32) -> dict:
    """Generated tokens/s of the shipped model: all prompts in one left-padded batch vs one prompt at a time."""
    model, tokenizer = load_model("tinyworld")
    prompts = [ex.prompt for ex in closed_book_questions(W.make_world(), "train", n_prompts)]
    kwargs = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False,
              "pad_token_id": tokenizer.pad_token_id}

    def run(group: list[str]) -> float:
        enc = tokenizer(group, return_tensors="pt", padding=True, padding_side="left")
        start = time.perf_counter()
        with torch.inference_mode():
            model.generate(**enc, **kwargs)
        return time.perf_counter() - start

    batched_s = run(prompts)
    single_s = sum(run([p]) for p in prompts)
    total = n_prompts * new_tokens
    return {"prompts": n_prompts, "new_tokens": new_tokens, "batched_tokens_per_s": round(total / batched_s, 1),
            "single_tokens_per_s": round(total / single_s, 1), "batched_speedup": round(single_s / batched_s, 2)}


def retrieval_latency(n_documents: int = 280, n_queries: int = 50) -> dict:
    """Mean ms per query (embed the query with MiniLM, search a Chroma collection of TinyWorld bios)."""
    world = W.make_world()
    people = (list(world.train) + list(world.heldout))[:n_documents]
    rng = random.Random(0)
    texts = [W.bio(person, rng) for person in people]
    queries = [f"Where does {person.name} live?" for person in people[:n_queries]]
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(tmp, minilm_embeddings(), "bench")  # telemetry off, as in notebook 10
        start = time.perf_counter()
        store.add_texts(texts, ids=[str(i) for i in range(len(texts))])
        index_s = time.perf_counter() - start
        store.similarity_search(queries[0], k=3)  # warm-up: first query loads the HNSW index
        start = time.perf_counter()
        for query in queries:
            store.similarity_search(query, k=3)
        query_s = time.perf_counter() - start
    return {"documents": len(texts), "queries": len(queries),
            "index_ms_per_document": round(1000 * index_s / len(texts), 2),
            "ms_per_query": round(1000 * query_s / len(queries), 2)}


# --------------------------------------------------------------------------- comparison and table
def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """{"a.b": number} for every numeric leaf (booleans excluded)."""
    out: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


def compare(current: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, float]:
    """current / previous for every numeric figure both runs have (a regression in time shows as > 1)."""
    now, before = _flatten(current), _flatten(previous)
    return {k: round(now[k] / before[k], 3) for k in sorted(now) if k in before and before[k] != 0}


def notebook_index(bench: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The bench's notebook rows keyed by name, so comparisons follow notebooks, not positions."""
    return {row["name"]: row for row in bench.get("notebooks", [])}


def render_table(bench: Mapping[str, Any], ratios: Mapping[str, float]) -> str:
    """The bench as a Markdown table; the last column is the ratio to the previous run where there is one."""
    lines = ["| row | value (normalised) | budget | ok | vs previous |", "|---|---|---|---|---|"]

    def line(row: str, value: str, budget: str = "", ok: bool | None = None, key: str = "") -> None:
        mark = "" if ok is None else ("yes" if ok else "**NO**")
        lines.append(f"| {row} | {value} | {budget} | {mark} | {ratios.get(key, '')} |")

    if "reference" in bench:
        ref = bench["reference"]
        readings = ", ".join(f"{r:.3f}" for r in ref.get("readings", [ref["seconds"]]))
        line("reference workload", f"{ref['seconds']:.3f} s, median of {readings} (calibration "
             f"{ref['calibration_s']:.3f} s: times here count ×{ref['speed_factor']:.2f})", key="reference.seconds")
    for row in bench.get("notebooks", []):
        line(row["name"], f"{row['wall_s']:.1f} s ({row['normalised_s']:.1f} s), {row['peak_rss_mb']:.0f} MB",
             f"≤ {row['limit_s']:.0f} s, ≤ {bench['budgets']['peak_mb']:.0f} MB", row["ok"],
             f"notebooks.{row['name']}.wall_s")
    if "course" in bench:
        c = bench["course"]
        whole = c.get("whole_course", True)
        what = "whole course" if whole else "the notebooks run (a subset: the course budget is not judged)"
        time_budget = f"≤ {c['limit_s']:.0f} s" if whole else ""
        if c["serial_s"] is not None:
            line(f"{what}, serial (sum)", f"{c['serial_s']:.0f} s", key="course.serial_s")
        if "parallel_s" in c:
            speedup = "" if c["speedup"] is None else f", speed-up {c['speedup']:.2f}×"
            budget = f"{time_budget}, ≤ {c['parallel_peak_limit_mb']:.0f} MB" if whole else ""
            line(f"{what}, {c['jobs']} at a time", f"{c['parallel_s']:.0f} s ({c['normalised_s']:.0f} s)"
                 f"{speedup}; memory ≤ {c['parallel_peak_bound_mb']:.0f} MB", budget, c["ok"], "course.parallel_s")
        else:
            line(f"{what}, parallel", "not run", time_budget, c["ok"])
    if "fixed_cost" in bench:
        f = bench["fixed_cost"]
        share = "" if f["share_of_serial"] is None else f", {f['share_of_serial']:.0%} of the serial course"
        line("kernel start + common imports, per notebook", f"{f['seconds']:.1f} s{share}", key="fixed_cost.seconds")
    if "training" in bench:
        t = bench["training"]
        split = ", ".join(f"{p} {f:.0%}" for p, f in t["phase_fraction"].items())
        line("pretraining (course train())", f"{t['course_tokens_per_s']:.0f} tok/s ({split})",
             key="training.course_tokens_per_s")
        line("minimal hand-written GPT", f"{t['minimal_tokens_per_s']:.0f} tok/s "
             f"({t['minimal_params']:,} vs {t['course_params']:,} params)", key="training.minimal_tokens_per_s")
        line("course / minimal (compute only)", f"{t['course_over_minimal']:.2f}", key="training.course_over_minimal")
    if "generation" in bench:
        g = bench["generation"]
        line("generation, batched", f"{g['batched_tokens_per_s']:.0f} tok/s", key="generation.batched_tokens_per_s")
        line("generation, one at a time", f"{g['single_tokens_per_s']:.0f} tok/s",
             key="generation.single_tokens_per_s")
    if "retrieval" in bench:
        line("retrieval (MiniLM + Chroma)", f"{bench['retrieval']['ms_per_query']:.1f} ms/query",
             key="retrieval.ms_per_query")
    return "\n".join(lines)


def budgets_met(bench: Mapping[str, Any]) -> bool:
    """True when every notebook and the whole course are within their budgets (a subset run, whose course row is
    not judged, answers for its notebooks only)."""
    course_ok = bench.get("course", {}).get("ok", False)
    return all(row["ok"] for row in bench.get("notebooks", [])) and (course_ok is None or course_ok)


# --------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The bench's options."""
    parser = argparse.ArgumentParser(prog="python -m hubhelpers.tooling.bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--skip-course", action="store_true", help="do not run the notebooks; use build/results.json")
    parser.add_argument("--skip-serial", action="store_true",
                        help="run the course in parallel only (notebook rows from it: an upper bound)")
    parser.add_argument("--jobs", type=int, default=course.DEFAULT_JOBS, help="notebooks at once in the parallel run")
    parser.add_argument("--only", nargs="+", default=(), help="notebooks to run (as for hubhelpers.tooling.course)")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite README.md's CPU-time column")
    parser.add_argument("--train-steps", type=int, default=30, help="steps of each training-throughput run")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench; print the table; write build/bench.json; return 1 when a budget is missed."""
    args = parse_args(argv)
    root = R.find_project_root() or Path.cwd()
    build_dir = R.find_build_dir()
    previous = R.read_json(build_dir / BENCH_FILE)
    budgets = Budgets()
    print("reference workload ...", file=sys.stderr)
    readings = [reference_seconds()]
    only = ["--only", *args.only] if args.only else []
    parallel_s = None
    if not args.skip_course:
        start = time.perf_counter()
        course.main([*only, "--jobs", str(args.jobs)])
        parallel_s = time.perf_counter() - start
        readings.append(reference_seconds())
        if not args.skip_serial:  # last, so that results.json keeps the serial times
            course.main([*only, "--jobs", "1"])
            readings.append(reference_seconds())
    reference = reference_speed(readings, budgets)
    speed = reference["speed_factor"]
    rows = notebook_rows(R.load_results(build_dir), budgets, speed)
    print("fixed cost per notebook ...", file=sys.stderr)
    fixed = fixed_cost_seconds()
    bench: dict[str, Any] = {
        "budgets": asdict(budgets),
        "reference": reference,
        "notebooks": rows,
        "course": course_total(rows, parallel_s, args.jobs, budgets, speed, serial_rows=not args.skip_serial,
                               whole=not args.only),
        "fixed_cost": {"seconds": fixed, "share_of_serial": round(fixed * len(rows) / max(1e-9, sum(
            row["wall_s"] for row in rows)), 3) if rows else None}}
    print("training throughput ...", file=sys.stderr)
    bench["training"] = training_throughput(args.train_steps)
    print("generation throughput ...", file=sys.stderr)
    bench["generation"] = generation_throughput()
    print("retrieval latency ...", file=sys.stderr)
    bench["retrieval"] = retrieval_latency()
    flat_now = {**bench, "notebooks": notebook_index(bench)}
    flat_before = {**previous, "notebooks": notebook_index(previous)} if previous else {}
    ratios = compare(flat_now, flat_before) if previous else {}
    R.write_json_atomic(build_dir / BENCH_FILE, bench)
    print(render_table(bench, ratios))
    if not args.no_readme and rows:
        readme = root / "README.md"
        readme.write_text(update_readme(readme.read_text(encoding="utf-8"),
                                        {row["name"]: row["wall_s"] for row in rows}), encoding="utf-8")
    ok = budgets_met(bench)
    verdict = "all budgets met" if ok else "BUDGET MISSED"
    if ok and args.only:
        verdict = "the notebooks run are within budget; the whole course's budget is not judged (--only: a subset)"
    print(f"\n{verdict}; written {build_dir / BENCH_FILE}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
