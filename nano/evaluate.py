"""Evaluate a nano checkpoint: greedy exact match on held-out prompts, and routing specialisation.

    python -m nano.evaluate --model DIR --n 100 [--device cuda] [--out DIR/eval.json]   # from the repository root

Exact match: the prompt is greedily continued for len(answer tokens) + 1 tokens; a record counts when the
continuation is the answer followed by the text's next token (" ." / " ;" / newline; `data.encode_for_exact_match`),
so "1234" for "123" fails ("answer_tokens_exact", the no-stop column, skips that last check). Prompts come from
`data.heldout_records` (the held-out seed space, never training's), one suite per task and context
length (passkey at 1K-8K tokens, 8-pair recall at 512 and 2K, ...). Batches are right-padded and run
without a KV cache: causal attention and the DeltaNet recurrence never look right, so padding cannot change
a row's logits, and the code only uses `model.model(...)` and `model.lm_head`.

Routing specialisation: for each domain, a packed held-out stream of `route_tokens` tokens (`data.domain_stream`,
the texts the routing-specialisation probe draws too); per layer, each domain's expert-load distribution
p_d = top-k selection counts / (tokens * k), read off `output_router_logits`. Per layer the generalised
Jensen-Shannon divergence across the D domains (equal weights, bits) is H(mean_d p_d) - mean_d H(p_d), in
[0, log2 D]; the metric is its mean over layers, reported for the trained model, the same architecture at a seeded
random init, and their ratio.
Run as a script, fla/causal_conv1d are blocked as in training: evaluation runs the kernels it was trained with.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # run as a script: block the kernels before transformers is imported
    for _kernel_package in ("fla", "causal_conv1d"):
        sys.modules[_kernel_package] = None

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3NextForCausalLM  # noqa: E402

from workbench.nano import data  # noqa: E402
from workbench.nano.data import domain_stream, encode_for_exact_match  # noqa: E402
from workbench.nano.tokenizer import PAD_ID  # noqa: E402


def answer_suites() -> list[str]:
    return [name for name, (task, _) in data.HELDOUT_SUITES.items() if task != "prose"]


@torch.no_grad()
def greedy_continue(model, prompts: list[list[int]], n_new: int, device: torch.device) -> list[list[int]]:
    """Greedy continuation of every prompt by n_new tokens, batched with right padding and no cache."""
    lengths = torch.tensor([len(p) for p in prompts], device=device)  # [B]
    ids = torch.full((len(prompts), int(lengths.max()) + n_new), PAD_ID, dtype=torch.long, device=device)
    for row, prompt in enumerate(prompts):
        ids[row, : len(prompt)] = torch.tensor(prompt, device=device)
    rows = torch.arange(len(prompts), device=device)
    for _ in range(n_new):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            hidden = model.model(input_ids=ids[:, : int(lengths.max())], use_cache=False).last_hidden_state
            logits = model.lm_head(hidden[rows, lengths - 1])  # [B, V]
        ids[rows, lengths] = logits.argmax(-1)
        lengths = lengths + 1
    return [ids[row, len(p): len(p) + n_new].tolist() for row, p in enumerate(prompts)]


def exact_match(model, tokenizer, records: list[dict], device: torch.device, batch_tokens: int) -> list[dict]:
    """Per record: {id, n_tokens, answer, predicted, exact, answer_tokens_exact}.

    Records run in batches sorted by length, each holding at most batch_tokens padded tokens."""
    encoded = [encode_for_exact_match(tokenizer, r) for r in records]
    order = sorted(range(len(records)), key=lambda i: len(encoded[i][0]))
    results: list[dict | None] = [None] * len(records)
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * (len(encoded[order[stop]][0]) + 40) <= batch_tokens:
            stop += 1
        batch = order[start:stop]
        n_new = max(len(encoded[i][1]) for i in batch)
        outputs = greedy_continue(model, [encoded[i][0] for i in batch], n_new, device)
        for i, out in zip(batch, outputs):
            gold = encoded[i][1]
            results[i] = {"id": records[i]["id"], "n_tokens": records[i]["n_tokens"], "answer": records[i]["answer"],
                          "predicted": tokenizer.decode(out[: len(gold) - 1]), "exact": out[: len(gold)] == gold,
                          "answer_tokens_exact": out[: len(gold) - 1] == gold[:-1]}
        start = stop
    return results


@torch.no_grad()
def expert_load(model, streams: dict[str, list[int]], device: torch.device, row_len: int = 512) -> np.ndarray:
    """Top-k selection frequencies [domains, layers, experts] (each row sums to 1) from output_router_logits."""
    k, n_experts = model.config.num_experts_per_tok, model.config.num_experts
    loads = []
    for ids in streams.values():
        x = torch.tensor(ids[: len(ids) // row_len * row_len], device=device).view(-1, row_len)  # [R, row_len]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(input_ids=x, use_cache=False, output_router_logits=True)
        per_layer = [torch.bincount(logits.float().topk(k, dim=-1).indices.flatten(), minlength=n_experts)
                     for logits in out.router_logits]  # each [E]
        counts = torch.stack(per_layer).double()  # [L, E]
        loads.append((counts / counts.sum(-1, keepdim=True)).cpu().numpy())
    return np.stack(loads)  # [D, L, E]


def generalized_js(load: np.ndarray) -> np.ndarray:
    """Per-layer generalised JS divergence (bits) across domains; load: [D, L, E] distributions over experts."""
    def entropy(p):
        return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(-1)
    return entropy(load.mean(0)) - entropy(load).mean(0)  # [L]


def routing_specialisation(model, seed: int, route_tokens: int, device: torch.device) -> dict:
    streams = {d: domain_stream(d, seed, route_tokens) for d in data.DOMAINS}
    torch.manual_seed(seed)
    random_model = Qwen3NextForCausalLM(model.config).to(device).eval()
    trained_js, random_js = generalized_js(expert_load(model, streams, device)), \
        generalized_js(expert_load(random_model, streams, device))
    return {"domains": list(streams), "tokens_per_domain": route_tokens,
            "js_bits_trained": float(trained_js.mean()), "js_bits_random_init": float(random_js.mean()),
            "ratio": float(trained_js.mean() / max(random_js.mean(), 1e-12)),
            "per_layer_trained": trained_js.round(4).tolist(), "per_layer_random_init": random_js.round(4).tolist(),
            "max_bits": float(np.log2(len(streams)))}


@torch.no_grad()
def mtp_acceptance(model, head, seed: int, n_tokens: int, device: torch.device, row_len: int = 1024) -> dict:
    """Greedy draft acceptance of the MTP head per domain (held-out streams, `n_tokens` each, rows of `row_len`),
    teacher-forced (see workbench.mtp.acceptance), and per position bucket over all domains."""
    from workbench.mtp import mtp_logits
    from workbench.mtp.acceptance import acceptance_rows, position_bucket

    by_domain, by_bucket = {}, {}
    for domain in data.DOMAINS:
        ids = domain_stream(domain, seed, n_tokens)
        row_len = min(row_len, n_tokens)  # a stream shorter than a row is one row
        x = torch.tensor(ids[: len(ids) // row_len * row_len], device=device).view(-1, row_len)  # [R, row_len]
        accepted, correct, p_acc = [], [], []
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            hidden = model.model(input_ids=x, use_cache=False).last_hidden_state  # [R, row_len, H], final-normed
            trunk, drafts = model.lm_head(hidden), mtp_logits(model, head, x, hidden)
        for r in range(x.shape[0]):
            rows = acceptance_rows(x[r], trunk[r].float(), drafts[r].float())
            accepted += rows["accepted"]
            correct += [c for c in rows["draft_correct"] if c is not None]
            p_acc += rows["p_accepted"]
            for pos, ok in zip(rows["position"], rows["accepted"]):
                by_bucket.setdefault(position_bucket(pos), []).append(ok)
        by_domain[domain] = {"accepted": float(np.mean(accepted)), "draft_correct": float(np.mean(correct)),
                             "p_accepted": float(np.mean(p_acc)), "rows": len(accepted)}
    return {"tokens_per_domain": n_tokens, "row_len": row_len, "by_domain": by_domain,
            "by_position": {b: float(np.mean(v)) for b, v in by_bucket.items()}}


@torch.no_grad()
def deltanet_half_lives(model, seed: int, n_tokens: int, device: torch.device, row_len: int = 1024) -> dict:
    """Per DeltaNet layer, each value head's memory half-life ln2 / -mean(g) in tokens (g: log decay, mean over the
    held-out streams of all six domains, `n_tokens` each), sorted, and how many heads forget within one token."""
    from workbench.capture import CaptureSettings, capture
    from workbench.ops.decay import half_life

    sums, tokens, layers = None, 0, None
    with capture(model, CaptureSettings(routing=False, deltanet=True, deltanet_path="torch")) as run:
        for domain in data.DOMAINS:
            ids = domain_stream(domain, seed, n_tokens)
            row_len = min(row_len, n_tokens)  # a stream shorter than a row is one row
            x = torch.tensor(ids[: len(ids) // row_len * row_len], device=device).view(-1, row_len)
            for row in x:  # one row per forward: the recorder's segments are rows
                model(input_ids=row[None], use_cache=False)
                record = run.collect("deltanet")
                layer_sum = record.segment_log_decay_sum.sum(1)  # [L, H]
                sums = layer_sum if sums is None else sums + layer_sum
                tokens += int(record.segment_tokens.sum())
                layers = record.layers
    lives = half_life((sums / tokens).double()).numpy()  # [L, H]
    return {"tokens": tokens, "per_layer": {str(layer): sorted(round(float(v), 3) for v in lives[i])
                                            for i, layer in enumerate(layers)},
            "heads_under_one_token": int((lives < 1.0).sum()), "heads": int(lives.size)}


def evaluate(model_dir: str, n: int = 100, seed: int = 0, device: str | None = None, suites: list[str] | None = None,
             batch_tokens: int | None = None, route_tokens: int = 16384) -> dict:
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch_tokens = batch_tokens or (262144 if device.type == "cuda" else 16384)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    report = {"model": str(model_dir), "seed_space": f"nano-heldout:{seed}", "n_per_suite": n, "suites": {}}
    for suite in suites or answer_suites():
        t0 = time.perf_counter()
        records = data.heldout_records(suite, seed, n)
        results = exact_match(model, tokenizer, records, device, batch_tokens)
        report["suites"][suite] = {
            "task": data.HELDOUT_SUITES[suite][0], "n": len(results),
            "mean_tokens": float(np.mean([r["n_tokens"] for r in results])),
            "exact": float(np.mean([r["exact"] for r in results])),
            "answer_tokens_exact": float(np.mean([r["answer_tokens_exact"] for r in results])),
            "seconds": round(time.perf_counter() - t0, 2),
            "wrong_examples": [{k: r[k] for k in ("id", "answer", "predicted")} for r in results if not r["exact"]][:3]}
    report["routing"] = routing_specialisation(model, seed, route_tokens, device) if route_tokens else None
    report["deltanet_half_lives"] = deltanet_half_lives(model, seed, min(route_tokens or 4096, 4096), device)
    from workbench.mtp import load_mtp_head, mtp_tensor_names

    if mtp_tensor_names(model_dir):
        head = load_mtp_head(model, model_dir)
        report["mtp"] = mtp_acceptance(model, head, seed, route_tokens or 16384, device)
    return report


def format_table(report: dict) -> str:
    lines = [f"{'suite':30s} {'task':13s} {'tokens':>7s} {'n':>4s} {'exact':>7s} {'no-stop':>7s}"]
    for suite, row in report["suites"].items():
        lines.append(f"{suite:30s} {row['task']:13s} {row['mean_tokens']:7.0f} {row['n']:4d} {row['exact']:7.1%} "
                     f"{row['answer_tokens_exact']:7.1%}")
    routing = report.get("routing")
    if routing:
        lines.append(f"routing JS (bits, mean over layers, {len(routing['domains'])} domains, max "
                     f"{routing['max_bits']:.2f}): trained {routing['js_bits_trained']:.4f}, random init "
                     f"{routing['js_bits_random_init']:.4f}, ratio {routing['ratio']:.2f}")
    lives = report.get("deltanet_half_lives")
    if lives:
        lines.append(f"DeltaNet heads with a half-life under one token: {lives['heads_under_one_token']} of "
                     f"{lives['heads']}; longest per layer: " + ", ".join(
                         f"L{layer} {max(values):.2f}" for layer, values in lives["per_layer"].items()))
    mtp = report.get("mtp")
    if mtp:
        lines.append("MTP greedy acceptance by domain: " + ", ".join(
            f"{d} {row['accepted']:.1%}" for d, row in mtp["by_domain"].items()))
        lines.append("MTP acceptance by position: " + ", ".join(f"{b} {v:.1%}" for b, v in mtp["by_position"].items()))
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="checkpoint folder (save_pretrained output)")
    p.add_argument("--n", type=int, default=100, help="prompts per suite")
    p.add_argument("--seed", type=int, default=0, help="held-out seed (nano-heldout namespace)")
    p.add_argument("--device", default=None)
    p.add_argument("--suites", nargs="*", default=None, help=f"default: {' '.join(answer_suites())}")
    p.add_argument("--batch-tokens", type=int, default=None, help="padded tokens per forward (cuda 262144)")
    p.add_argument("--route-tokens", type=int, default=16384, help="tokens per domain for routing JS (0: skip)")
    p.add_argument("--out", default=None, help="JSON report path (default MODEL/eval.json)")
    args = p.parse_args(argv)
    report = evaluate(args.model, args.n, args.seed, args.device, args.suites, args.batch_tokens, args.route_tokens)
    out = Path(args.out or Path(args.model) / "eval.json")
    out.write_text(json.dumps(report, indent=2))
    print(format_table(report))
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
