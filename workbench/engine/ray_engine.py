"""`workbench trace --engine ray`: the prompts as a Ray dataset, an actor pool with one model replica per actor
(`num_gpus // gpus_per_replica` replicas of `gpus_per_replica` GPUs each, or CPU workers), every actor running the
same capture as the local engine (`tracing.trace_prompts`) on its blocks of prompts and committing its parts into
the same run of the same trace folder (TraceWriter(join=True): its own part names, the manifest updated under a lock).
The driver creates the run folder, hands out the prompts, and marks the run complete when every block committed.

Local Ray (`ray.init()` on this machine) by default; `address` joins an existing cluster, whose workers must see
`out` at the same path (a shared POSIX file system: the manifest lock is an flock). A replica bigger than one GPU
loads with device_map="auto" over the GPUs Ray gives its actor.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from ..capture import CaptureSettings
from ..inputs.prompts import Prompt
from ..trace.folder import prepare_for_append
from ..trace.writer import new_run_id, read_manifest, remove_if_empty_trace
from ..tracing.manifest import named
from ..tracing import PART_TOKENS, RunSummary, TraceInterrupted, check_resume


REPLICA_START_S = 1800  # how long the pool waits for every replica to load its model before tracing starts


class TraceActor:
    """One model replica. Each call traces a block of prompts (a Ray Data batch: columns id, text, label, extra) and
    commits its parts into run `run_id` of `out`; returns the block's prompt ids and token counts."""

    def __init__(self, model: str, load_options: dict, out: str, run_id: str, settings: dict, max_tokens, batch_tokens,
                 part_tokens: int):
        from ..loading import load_model

        self.loaded = load_model(model, **load_options)
        self.out, self.run_id = out, run_id
        self.settings = CaptureSettings.from_dict(settings)
        self.options = dict(max_tokens=max_tokens, batch_tokens=batch_tokens, part_tokens=part_tokens)
        self.replica, self.calls = uuid.uuid4().hex[:8], 0  # part files: part-<replica>_<call>-<n>.parquet

    def __call__(self, block: dict) -> dict:
        from ..tracing import trace_prompts

        prompts = [Prompt(str(i), t, None if label == "" else label, json.loads(extra))
                   for i, t, label, extra in zip(block["id"], block["text"], block["label"], block["extra"])]
        self.calls += 1
        trace_prompts(self.loaded, prompts, self.out, self.settings, progress=False, run_id=self.run_id, join=True,
                      writer_tag=f"{self.replica}_{self.calls}", **self.options)
        return {"id": [p.id for p in prompts]}


def trace_with_ray(model: str, load_options: dict, prompts: list[Prompt], out: str | Path, settings: CaptureSettings,
                   max_tokens: int | None = None, batch_tokens: int | None = None, part_tokens: int = PART_TOKENS,
                   resume: str | None = None, num_gpus: int = 0, num_workers: int | None = None,
                   address: str | None = None, gpus_per_replica: int = 1, prompts_per_block: int | None = None,
                   name: str | None = None, note: str | None = None) -> RunSummary:
    """Trace `prompts` with a Ray Data actor pool into one run of `out` (see the module docstring); returns the run's
    summary. The tables equal a single-process trace of the same prompts (tests/engine/test_ray_engine.py)."""
    import ray

    out = Path(out)
    if num_gpus and num_gpus % gpus_per_replica:
        raise ValueError(f"--num-gpus {num_gpus} is not a multiple of gpus_per_replica {gpus_per_replica}")
    replicas = num_workers or (num_gpus // gpus_per_replica if num_gpus else 2)
    if num_gpus:
        load_options = {**load_options, "device": None if gpus_per_replica > 1 else "cuda",
                        "device_map": "auto" if gpus_per_replica > 1 else load_options.get("device_map")}
    root_existed = out.exists()
    created = prepare_for_append(out)
    run_id, skipped = resume or new_run_id(), set()
    if resume is not None:  # the driver loads no model: the replicas load the --model the CLI was given
        skipped = check_resume(out, resume, read_manifest(out, resume), settings, max_tokens=max_tokens,
                               prompts=prompts)
    todo = [p for p in prompts if p.id not in skipped]
    rows = [{"id": p.id, "text": p.text, "label": p.label or "", "extra": json.dumps(p.extra)} for p in todo]
    block = prompts_per_block or max(1, min(64, -(-len(rows) // (4 * replicas))))
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        if rows:
            # Ray Data starts an actor pool's actors asynchronously and hands blocks to whichever is ready: the
            # first replica to load its model could take every block while the others load. Wait for all of them.
            ray.data.DataContext.get_current().wait_for_min_actors_s = REPLICA_START_S
            dataset = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // block)))
            resources = {"num_gpus": gpus_per_replica} if num_gpus else {"num_cpus": 1}
            traced = dataset.map_batches(
                TraceActor, batch_size=block, concurrency=replicas, batch_format="numpy",
                fn_constructor_kwargs=dict(model=model, load_options=load_options, out=str(out), run_id=run_id,
                                           settings=settings.to_dict(), max_tokens=max_tokens,
                                           batch_tokens=batch_tokens, part_tokens=part_tokens),
                **resources)
            done = [str(i) for row in traced.iter_rows() for i in [row["id"]]]
        else:
            done = []
    except KeyboardInterrupt:
        manifest = read_manifest(out, run_id)
        summary = None if manifest is None else RunSummary(run_id, out / "runs" / f"{run_id}.json",
                                                            len(manifest["prompts"]), manifest["num_tokens"])
        raise TraceInterrupted(summary, len(prompts) - (0 if summary is None else summary.num_sequences)) from None
    except BaseException:
        if created:  # a failed start leaves no new folder behind (committed parts are kept: resumable)
            remove_if_empty_trace(out, keep_root=root_existed)
        raise
    finally:
        if started:
            ray.shutdown()
    from ..trace.writer import TraceWriter

    writer = TraceWriter(out, run_id=run_id, join=True)
    path = writer.finish(order=[p.id for p in prompts], engine={"name": "ray", "replicas": replicas,
                                                                   "gpus_per_replica": gpus_per_replica if num_gpus else 0},
                         **named(name, note))
    manifest = read_manifest(out, run_id)
    return RunSummary(run_id, path, len(manifest["prompts"]), manifest["num_tokens"], len(done), sorted(skipped))
