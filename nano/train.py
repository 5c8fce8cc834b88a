"""Train the nano Qwen3-Next on the synthetic mix for a wall-clock budget, then save a bf16 checkpoint.

    python -m nano.train --out DIR --minutes 8 --seed 0 [--device cuda]    # from the repository root
    python -m nano.train --out DIR --minutes 0.2 --tiny --device cpu      # smoke test

Run as a script, fla and causal_conv1d are blocked before transformers is imported: fla's DeltaNet backward
is refused on Hopper (an incorrect-results guard), so training uses transformers' torch DeltaNet kernels.
Imported as a module (tests) nothing is blocked; `main` refuses CUDA training when fla is importable.

    python -m nano.train --out DIR --init-from workbench/nano/checkpoint --mtp-weight 0.3 --minutes 6

Loss = lm_weight * mean token cross-entropy over every token + answer_weight * mean cross-entropy over answer tokens
(the digits or items a prompt asks for and the token that ends them; their own mean, so long filler cannot
drown them)
+ router_aux_loss_coef * the router load-balancing loss
+ mtp_weight * the multi-token-prediction loss (with --mtp-weight > 0: a Qwen3-Next MTP head, `workbench.mtp`, whose
row t predicts token t+2 from the trunk's final-normed hidden h_t and token t+1, mean cross-entropy over every row;
the head starts as a copy of the trunk's last full-attention layer and is saved as its own `mtp.*` shard).
--init-from continues from a checkpoint (its config and weights) instead of a random init. Each step holds ~tokens_per_step tokens in rows
of one length drawn from a curriculum (256/512 for the first 10% of the budget, then 256..4096 with most
steps at 1024-2048). LR: linear warmup over `warmup_steps`, then cosine to 10% over the wall-clock budget.
Row lengths follow the wall clock, so two runs are seeded alike but not bit-identical.

DIR gets model.safetensors (bf16), config.json, generation_config.json, tokenizer.json,
tokenizer_config.json, train_log.jsonl and train_summary.json.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # run as a script: block the kernels before transformers is imported
    for _kernel_package in ("fla", "causal_conv1d"):
        sys.modules[_kernel_package] = None

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from torch.utils.data import DataLoader, IterableDataset, get_worker_info  # noqa: E402
from transformers import Qwen3NextForCausalLM  # noqa: E402

from nano import training_data  # noqa: E402
from workbench.mtp import MTPHead, mtp_logits, write_mtp_shard  # noqa: E402
from workbench.nano.model_config import check_nano_structure, nano_config  # noqa: E402
from workbench.nano.tokenizer import build_tokenizer, build_vocab  # noqa: E402

ROW_LENGTHS = (256, 512, 1024, 2048, 4096)
ROW_LENGTH_WEIGHTS = (1, 1, 2, 3, 1)  # share of steps after the warm-up phase


def row_length(rng: random.Random, progress: float, max_len: int) -> int:
    """Row length for a step at `progress` (fraction of the budget spent): short first, then the full mix."""
    if progress < 0.1:
        choices, weights = ROW_LENGTHS[:2], ROW_LENGTH_WEIGHTS[:2]
    else:
        choices, weights = ROW_LENGTHS, ROW_LENGTH_WEIGHTS
    allowed = [(c, w) for c, w in zip(choices, weights) if c <= max_len] or [(min(max_len, 256), 1)]
    return rng.choices([c for c, _ in allowed], [w for _, w in allowed])[0]


class TrainingStream(IterableDataset):
    """Endless batches (input ids [B, L+1] int64, answer flags [B, L+1] uint8); one seeded stream per worker.

    `progress` is a shared double (fraction of the budget spent) the main process updates, so forked
    DataLoader workers follow the length curriculum.
    """

    def __init__(self, seed: int, tokens_per_step: int, max_len: int, progress):
        self.seed, self.tokens_per_step, self.max_len, self.progress = seed, tokens_per_step, max_len, progress

    def __iter__(self):
        worker = get_worker_info()
        rng = training_data.training_rng(self.seed, worker.id if worker is not None else 0)
        vocab = build_vocab()
        while True:
            length = row_length(rng, self.progress.value, self.max_len)
            ids, flags = training_data.training_batch(rng, vocab, max(1, self.tokens_per_step // length), length + 1)
            yield torch.tensor(ids, dtype=torch.long), torch.tensor(flags, dtype=torch.uint8)


def learning_rate(step: int, progress: float, peak: float, warmup_steps: int) -> float:
    warm = min(1.0, (step + 1) / warmup_steps)
    return peak * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def step_loss(model, input_ids: torch.Tensor, answer_flags: torch.Tensor, answer_weight: float, aux_coef: float,
              autocast: bool, lm_weight: float = 1.0, mtp_head: MTPHead | None = None,
              mtp_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch. input_ids, answer_flags: [B, L+1]; predicts ids[:, 1:] from ids[:, :-1] (and, with an
    MTP head, ids[:, 2:] from the trunk's final-normed hidden states and ids[:, 1:-1])."""
    inputs, targets = input_ids[:, :-1], input_ids[:, 1:]  # [B, L]
    is_answer = answer_flags[:, 1:].float()  # [B, L]
    final_hidden = []
    hook = (model.get_decoder().norm.register_forward_hook(lambda _m, _i, out: final_hidden.append(out))
            if mtp_head is not None else None)
    try:
        with torch.autocast(input_ids.device.type, dtype=torch.bfloat16, enabled=autocast):
            out = model(input_ids=inputs, use_cache=False, output_router_logits=aux_coef > 0)
            mtp_out = mtp_logits(model, mtp_head, inputs, final_hidden[0]) if mtp_head is not None else None
    finally:
        if hook is not None:
            hook.remove()
    token_ce = F.cross_entropy(out.logits.float().flatten(0, 1), targets.flatten(), reduction="none")
    token_ce = token_ce.view_as(is_answer)  # [B, L]
    lm_loss = token_ce.mean()
    answer_loss = (token_ce * is_answer).sum() / is_answer.sum().clamp_min(1.0)
    loss = lm_weight * lm_loss + answer_weight * answer_loss
    aux = out.aux_loss if aux_coef > 0 and out.aux_loss is not None else torch.zeros((), device=loss.device)
    loss = loss + aux_coef * aux.float()
    parts = {"lm_loss": lm_loss.detach(), "answer_loss": answer_loss.detach(), "aux_loss": aux.detach()}
    if mtp_out is not None:  # row t predicts targets[:, t + 1]
        mtp_loss = F.cross_entropy(mtp_out.float().flatten(0, 1), targets[:, 1:].flatten())
        loss = loss + mtp_weight * mtp_loss
        parts["mtp_loss"] = mtp_loss.detach()
    return loss, parts


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--minutes", type=float, default=8.0, help="wall-clock training budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--tiny", action="store_true", help="tiny config and small steps for a CPU smoke test")
    p.add_argument("--tokens-per-step", type=int, default=None, help="default 65536 (tiny: 2048)")
    p.add_argument("--max-len", type=int, default=None, help="longest row (default 4096; tiny: 256)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup-steps", type=int, default=None, help="default 100 (tiny: 2)")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--answer-weight", type=float, default=1.0)
    p.add_argument("--lm-weight", type=float, default=1.0, help="weight of the every-token cross-entropy")
    p.add_argument("--mtp-weight", type=float, default=0.0, help="> 0: train an MTP head with this loss weight")
    p.add_argument("--init-from", default=None, help="continue from this checkpoint folder (config and weights)")
    p.add_argument("--aux-coef", type=float, default=0.01, help="router load-balancing loss coefficient")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default 2 on cuda, 0 on cpu)")
    p.add_argument("--log-every", type=int, default=None, help="default 25 (tiny: 1)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (tests)")
    args = p.parse_args(argv)
    args.tokens_per_step = args.tokens_per_step or (2048 if args.tiny else 65536)
    args.max_len = args.max_len or (256 if args.tiny else 4096)
    args.warmup_steps = args.warmup_steps or (2 if args.tiny else 100)
    args.log_every = args.log_every or (1 if args.tiny else 25)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    on_cuda = device.type == "cuda"
    if on_cuda and importlib.util.find_spec("fla") is not None:
        raise RuntimeError("fla is importable and its DeltaNet backward fails on Hopper: "
                           "run `python -m nano.train`, which blocks it")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    tokenizer = build_tokenizer()
    if args.init_from:
        if not (Path(args.init_from) / "config.json").is_file():
            raise SystemExit(f"--init-from {args.init_from}: not a checkpoint folder (no config.json)")
        model = Qwen3NextForCausalLM.from_pretrained(args.init_from, dtype=torch.float32)
        config = model.config
        config.router_aux_loss_coef = args.aux_coef
    else:
        config = nano_config(len(tokenizer), tiny=args.tiny, router_aux_loss_coef=args.aux_coef)
        model = Qwen3NextForCausalLM(config)
    counts = check_nano_structure(config, min_experts=32 if args.tiny else 128)
    model = model.to(device).train()
    mtp_head = None
    if args.mtp_weight > 0:
        mtp_head = MTPHead(model)
        last_full = [i for i, kind in enumerate(config.layer_types) if kind == "full_attention"][-1]
        mtp_head.layers[0].load_state_dict(model.get_decoder().layers[last_full].state_dict())  # warm start
        torch.nn.init.normal_(mtp_head.fc.weight, std=config.initializer_range)
        mtp_head = mtp_head.to(device).train()
    print(f"nano{' (tiny)' if args.tiny else ''}: {counts['total']:,} params, {counts['active']:,} active/token, "
          f"device {device}, torch {torch.__version__}, transformers {transformers.__version__}", flush=True)

    params = list(model.parameters()) + (list(mtp_head.parameters()) if mtp_head is not None else [])
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.95), fused=on_cuda)
    progress = mp.Value("d", 0.0, lock=False)
    workers = args.workers if args.workers is not None else (2 if on_cuda else 0)
    loader = DataLoader(TrainingStream(args.seed, args.tokens_per_step, args.max_len, progress), batch_size=None,
                        num_workers=workers, pin_memory=on_cuda, prefetch_factor=4 if workers else None)

    budget_s, log, step, tokens = 60.0 * args.minutes, [], 0, 0
    log_path = out_dir / "train_log.jsonl"
    log_path.write_text("")
    start = last_time = time.perf_counter()
    last_tokens = 0
    for input_ids, answer_flags in loader:
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s or (args.max_steps is not None and step >= args.max_steps):
            break
        progress.value = elapsed / budget_s
        lr = learning_rate(step, progress.value, args.lr, args.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        input_ids = input_ids.to(device, non_blocking=True)
        answer_flags = answer_flags.to(device, non_blocking=True)
        loss, parts = step_loss(model, input_ids, answer_flags, args.answer_weight, config.router_aux_loss_coef,
                                autocast=on_cuda, lm_weight=args.lm_weight, mtp_head=mtp_head,
                                mtp_weight=args.mtp_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        tokens += input_ids[:, :-1].numel()
        if step % args.log_every == 0 or step == 1:
            now = time.perf_counter()
            entry = {"step": step, "elapsed_s": round(now - start, 2), "loss": round(loss.item(), 4),
                     **{k: round(v.item(), 4) for k, v in parts.items()}, "grad_norm": round(grad_norm.item(), 3),
                     "lr": round(lr, 6), "row_len": input_ids.shape[1] - 1, "rows": input_ids.shape[0],
                     "tokens": tokens, "tokens_per_s": round((tokens - last_tokens) / max(now - last_time, 1e-9))}
            last_time, last_tokens = now, tokens
            log.append(entry)
            with open(log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
            print(" ".join(f"{k}={v}" for k, v in entry.items()), flush=True)
    train_s = time.perf_counter() - start
    if step and (not log or log[-1]["step"] != step):
        log.append({"step": step, "loss": round(loss.item(), 4), **{k: round(v.item(), 4) for k, v in parts.items()}})

    model.config.use_cache = True
    # shards of at most 12 MB: the lent GPU returns files of at most 16 MiB, and the release is sharded too
    model.to(torch.bfloat16).save_pretrained(str(out_dir), max_shard_size="12MB")
    tokenizer.save_pretrained(str(out_dir))
    if mtp_head is not None:  # its own shard, named and indexed as the release does
        write_mtp_shard(out_dir, mtp_head.to(torch.bfloat16).state_dict())
    summary = {"steps": step, "tokens": tokens, "train_s": round(train_s, 1),
               "tokens_per_s": round(tokens / max(train_s, 1e-9)), "final": log[-1] if log else None, "params": counts,
               "args": vars(args), "device": str(device), "torch": torch.__version__,
               "transformers": transformers.__version__}
    (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    print(f"saved {out_dir}: {step} steps, {tokens:,} tokens in {train_s:.0f} s "
          f"({summary['tokens_per_s']:,} tokens/s)", flush=True)
    return summary


if __name__ == "__main__":
    main()
