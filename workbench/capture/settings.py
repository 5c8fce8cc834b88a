"""What a capture records. A dataclass so the run manifest can store and restore it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class CaptureSettings:
    """routing:        per MoE layer and token, top-k ids/weights and router summaries.
    router_logits:     also keep the full router logits [tokens, experts] (large: E x 2 bytes per token/layer).
    deltanet:          per DeltaNet layer and token, head-aggregated state norm, decay, beta, half-life; per head
                       a per-sequence summary; state recall of planted pairs (see capture/deltanet/).
    deltanet_heads:    "aggregate" (per-head rows only every deltanet_head_stride tokens) or "per_head" (every token).
    deltanet_head_stride: per-head rows at positions divisible by N (0 = never; ignored with "per_head").
    state_snapshots:   token positions (negative: from the end of each prefill) at which to keep each head's
                       state spectrum (effective rank, top singular value).
    deltanet_path:     "auto" (fla on CUDA when importable and calibrated, else torch), "fla" or "torch".
    attention:         per full-attention layer and head, for selected query rows: span masses, top-k keys,
                       entropy, sink mass, mean distance; per token and head the output gate (capture/attention.py).
    attention_stride:  analyse every N-th token (positions N-1, 2N-1, ...) besides the last token and query spans;
                       0 = only those.
    attention_topk:    most-attended keys kept per (query row, head).
    mtp:               run the checkpoint's multi-token-prediction head (its `mtp.*` tensors) beside the trunk: per
                       position its draft of token t+2 and whether the trunk would accept it (table `mtp`), and the
                       MTP layer's routing in `routing` under layer index num_hidden_layers (capture/mtp.py).
    expert_saliency:   per MoE layer and routed expert: selections, mean gate weight, mean ||expert output||, REAP;
                       per layer the shared expert's share of the MoE output (capture/saliency.py).
    expert_saliency_path: how each routed expert's own output is obtained: "auto" ("tap" where exact, else
                       "grouped"), "tap" (read inside the model's grouped_mm experts forward: no expert runs twice; an
                       error where the experts run another implementation), "grouped" (recomputed by the experts
                       module's own implementation, batched) or "loop" (recomputed by its eager per-expert loop).
    """

    routing: bool = True
    router_logits: bool = False
    deltanet: bool = False
    deltanet_heads: str = "aggregate"
    deltanet_head_stride: int = 0
    state_snapshots: tuple[int, ...] = ()
    deltanet_path: str = "auto"
    attention: bool = False
    attention_stride: int = 64
    attention_topk: int = 8
    mtp: bool = False
    expert_saliency: bool = False
    expert_saliency_path: str = "auto"

    def __post_init__(self):
        if self.router_logits and not self.routing:
            raise ValueError("router_logits=True needs routing=True")
        self._check_deltanet()
        self._check_attention()
        if self.expert_saliency_path not in ("auto", "tap", "grouped", "loop"):
            raise ValueError("expert_saliency_path must be 'auto', 'tap', 'grouped' or 'loop', got "
                             f"{self.expert_saliency_path!r}")
        if self.expert_saliency_path != "auto" and not self.expert_saliency:
            raise ValueError("expert_saliency_path needs expert_saliency=True (CLI: --expert-saliency-path needs "
                             "--expert-saliency)")

    def _check_attention(self) -> None:
        for name, least in (("attention_stride", 0), ("attention_topk", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")

    def _check_deltanet(self) -> None:
        if isinstance(self.state_snapshots, (int, str)):
            raise ValueError(f"state_snapshots must be a sequence of token positions, got {self.state_snapshots!r}")
        self.state_snapshots = tuple(self.state_snapshots)  # a JSON manifest gives a list
        if self.deltanet_heads not in ("aggregate", "per_head"):
            raise ValueError(f"deltanet_heads must be 'aggregate' or 'per_head', got {self.deltanet_heads!r}")
        if isinstance(self.deltanet_head_stride, bool) or not isinstance(self.deltanet_head_stride, int) \
                or self.deltanet_head_stride < 0:
            raise ValueError(f"deltanet_head_stride must be an integer >= 0, got {self.deltanet_head_stride!r}")
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in self.state_snapshots):
            raise ValueError(f"state_snapshots must be integer token positions, got {self.state_snapshots!r}")
        if self.deltanet_path not in ("auto", "fla", "torch"):
            raise ValueError(f"deltanet_path must be 'auto', 'fla' or 'torch', got {self.deltanet_path!r}")
        asked = (self.deltanet_heads != "aggregate" or self.deltanet_head_stride or self.state_snapshots
                 or self.deltanet_path != "auto")
        if asked and not self.deltanet:
            raise ValueError("deltanet_heads, deltanet_head_stride, state_snapshots and deltanet_path need "
                             "deltanet=True (CLI: --deltanet-heads, --deltanet-head-stride, --state-snapshot and "
                             "--deltanet-path need --deltanet)")

    def check_environment(self, device: str | None = None) -> None:
        """Checks that depend on this machine, not on the settings alone (a manifest written on a GPU machine must
        still load elsewhere): deltanet_path='fla' needs flash-linear-attention and a CUDA device."""
        if self.deltanet_path != "fla":
            return
        from ..ops.state_norms.fla_backend import fla_installed

        if not fla_installed():
            raise ValueError("--deltanet-path fla needs flash-linear-attention (pip install flash-linear-attention); "
                             "--deltanet-path torch runs anywhere")
        if device is not None and not str(device).startswith("cuda"):
            raise ValueError(f"--deltanet-path fla runs on CUDA only, got --device {device}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CaptureSettings":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown capture settings: {sorted(unknown)}; known: {sorted(known)}")
        if not data.get("expert_saliency") and data.get("expert_saliency_path") == "grouped":
            data = {**data, "expert_saliency_path": "auto"}  # the default before "auto", in older manifests
        return cls(**data)
