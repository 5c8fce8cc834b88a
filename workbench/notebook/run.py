"""One run of a trace folder, answering the dashboard's questions as tidy DataFrames.

Each method is one call of the analysis function the matching dashboard page runs (named in its docstring), on the
run's scope: `layer` (one index or several), `label` (a prompt label), `seq_id` (one prompt). A question whose table
the run lacks raises MissingTable naming the table, what writes it and the runs of the folder that hold it; it never
returns an empty frame in silence.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

import pandas as pd

from ..analysis import attention, balance, deltanet, long_context, mtp, needle, routing, sparsity
from ..analysis.db import Scope, TraceDB
from ..analysis.facts import RunFacts, run_facts
from ..trace.schema import table_writers

Layers = int | Iterable[int] | None


class MissingTable(LookupError):
    """A question asked of a run that lacks the table it reads (one line: the table, its writer, runs with it)."""


from ..trace.runs import run_name  # noqa: E402,F401  (the one definition of a run's name; re-exported)


class Run:
    """One committed run: `id`, `name`, `manifest`, `tables`, `facts` (layer kinds and labels, experts, top-k,
    heads), and one method per question. `run.plot.<question>()` draws it."""

    def __init__(self, db: TraceDB, manifest: dict):
        self._db = db
        self.manifest = manifest
        self.id: str = manifest["run_id"]
        self.name: str | None = run_name(manifest)
        self.tables: tuple[str, ...] = tuple(manifest.get("tables", ()))

    def __repr__(self) -> str:
        name = f" ({self.name})" if self.name else ""
        return (f"<Run {self.id}{name}: {self.manifest['model']['source']}, {self.manifest.get('num_tokens', 0)} "
                f"tokens, tables {', '.join(self.tables) or 'none'}>")

    @cached_property
    def facts(self) -> RunFacts:
        return run_facts(self.manifest)

    @property
    def plot(self):
        """The figures of this run's questions (RunPlots): `run.plot.expert_load()` returns a plotly Figure."""
        from .plots import RunPlots  # plotly: only when a figure is asked for

        return RunPlots(self)

    @property
    def prompts(self) -> pd.DataFrame:
        """The run's prompts as committed: id, label, num_tokens (one row each, in the manifest's order)."""
        return pd.DataFrame([{"id": p["id"], "label": p.get("label"), "num_tokens": p.get("num_tokens")}
                             for p in self.manifest.get("prompts", [])], columns=["id", "label", "num_tokens"])

    def scope(self, layer: Layers = None, label: str | None = None, seq_id: str | None = None,
              positions: tuple[int, int] | None = None) -> Scope:
        """The analysis Scope of these filters on this run (what the dashboard's sidebar builds)."""
        layers = None if layer is None else (int(layer),) if isinstance(layer, int) else tuple(int(x) for x in layer)
        return Scope(self.id, layers, label, seq_id, None if positions is None else tuple(positions))

    def _need(self, *tables: str) -> None:
        """Raise MissingTable unless the run holds at least one of `tables` (committed rows)."""
        if any(t in self.tables and self._db.has(t) for t in tables):
            return
        writers = table_writers()
        table = tables[0]
        others = [m["run_id"] for m in self._db.trace.manifests() if table in m.get("tables", ())]
        where = f"runs here with it: {', '.join(others)}" if others else "no run of this folder has it"
        raise MissingTable(f"run {self.id} has no `{table}` table (written by {writers.get(table, 'a probe')}); "
                           f"{where}")

    # Routing (dashboard page: Routing & sparsity)

    def expert_load(self, layer: Layers = None, label: str | None = None) -> pd.DataFrame:
        """How often each expert is chosen per layer: layer, expert, count, fraction (of the layer's top-k slots;
        never-chosen experts listed with 0). `analysis.routing.expert_load`."""
        self._need("routing")
        return routing.expert_load(self._db, self.scope(layer, label), self.facts.num_experts)

    def load_balance(self, layer: Layers = None, label: str | None = None) -> pd.DataFrame:
        """Per layer: experts, cv, max_over_mean, entropy_norm, unused, top1pct_share of the expert load.
        `analysis.balance.load_balance` of `expert_load`."""
        return balance.load_balance(self.expert_load(layer, label))

    def load_by_label(self, layer: Layers = None) -> pd.DataFrame:
        """Expert load per (layer, prompt label): layer, label, expert, count, fraction.
        `analysis.routing.load_by_label`."""
        self._need("routing")
        return routing.load_by_label(self._db, self.scope(layer), self.facts.num_experts)

    def label_divergence(self, layer: Layers = None) -> pd.DataFrame:
        """Jensen-Shannon divergence (bits) between each pair of labels' expert loads, per layer: layer, label_a,
        label_b, js_bits. `analysis.balance.label_divergence` of `load_by_label`."""
        return balance.label_divergence(self.load_by_label(layer))

    def router_confidence(self, metric: str = "router_entropy", layer: Layers = None,
                          label: str | None = None) -> pd.DataFrame:
        """Distribution over tokens of a router metric (router_entropy, topk_mass, topk_margin, shared_gate) per
        layer: layer, rows, mean, p05, p25, p50, p75, p95. `analysis.routing.metric_quantiles`."""
        self._need("routing")
        return routing.metric_quantiles(self._db, self.scope(layer, label), metric)

    # Attention (dashboard page: Attention recall)

    def needle_mass(self, span: str = "needle", layer: Layers = None, label: str | None = None) -> pd.DataFrame:
        """Mean attention mass on `span` per (layer, head) from the query rows at or after the span's end: layer,
        head, mass, rows. `analysis.needle.needle_mass`, the one definition the pages use."""
        self._need("attention")
        return needle.needle_mass(self._db, self.scope(layer, label), span)

    def attention_sinks(self, layer: Layers = None, label: str | None = None) -> pd.DataFrame:
        """Per (layer, head): sink_mass (weight on token 0), entropy (nats), mean distance.
        `analysis.attention.head_sink_entropy`."""
        self._need("attention")
        return attention.head_sink_entropy(self._db, self.scope(layer, label))

    def retrieval_heads(self, top: int | None = None) -> pd.DataFrame:
        """Retrieval-head scores (Wu et al. 2024; `probes/retrieval_heads.py` writes the `retrieval` table) per
        (layer, head), best first: layer, head, score, hits, steps, sequences; the `top` best when given.
        `analysis.attention.retrieval_summary`."""
        self._need("retrieval")
        scores = attention.retrieval_summary(self._db, self.scope())
        return scores if top is None else scores.head(top).reset_index(drop=True)

    # DeltaNet state (dashboard page: DeltaNet state)

    def state_norms(self, seq_id: str, layer: Layers = None) -> pd.DataFrame:
        """One prompt's state norm ||S_t||_F per (layer, position): layer, position, state_norm_mean,
        state_norm_max. `analysis.deltanet.state_norm_curves`."""
        self._need("deltanet")
        return deltanet.state_norm_curves(self._db, self.scope(layer), seq_id)

    def state_half_lives(self, layer: Layers = None, label: str | None = None) -> pd.DataFrame:
        """Per DeltaNet (layer, head), token-weighted over the prompts: tokens, decay_mean, beta_mean,
        state_norm_mean, log_decay_mean, half_life (tokens, ln 2 / -log_decay_mean).
        `analysis.deltanet.head_summary`."""
        self._need("deltanet_head_summary")
        return deltanet.head_summary(self._db, self.scope(layer, label))

    def state_recall(self, seq_id: str, layer: Layers = None) -> pd.DataFrame:
        """How well each DeltaNet layer's state still returns a planted needle's value, against tokens since the
        key: `state_recall` rows with distance. `analysis.deltanet.recall_curves`."""
        self._need("state_recall")
        return deltanet.recall_curves(self._db, self.scope(layer), seq_id)

    # Long context (dashboard page: Long context)

    def needle_by_layer(self, span: str = "needle", label: str | None = None) -> pd.DataFrame:
        """Per layer: attention mass on `span` (attention layers) beside the span's share of the DeltaNet layers'
        output: layer, layer_kind, measure, value, rows. `analysis.long_context.needle_by_layer`."""
        self._need("deltanet_contribution", "attention")
        return long_context.needle_by_layer(self._db, self.scope(label=label), span)

    def needle_sweep(self, value: str = "exact_match", layer: Layers = None) -> pd.DataFrame:
        """The long-context sweep (`probes/needle_sweep.py`) per (layer, context_length, needle_depth): the mean of
        `value` (exact_match, needle_mass, deltanet_needle_contribution, state_retention).
        `analysis.long_context.sweep_grid`."""
        self._need("needle_sweep")
        return long_context.sweep_grid(self._db, self.scope(layer), value)

    # Saliency and pruning (dashboard page: Sparsity probes)

    def expert_saliency(self, layer: Layers = None, label: str | None = None) -> pd.DataFrame:
        """Per (layer, expert): count, gate_mean, output_norm_mean, reap. `analysis.sparsity.expert_saliency`."""
        self._need("expert_saliency")
        return sparsity.expert_saliency(self._db, self.scope(layer, label))

    def shared_expert_share(self, layer: Layers = None, label: str | None = None) -> pd.DataFrame:
        """Per layer: the shared expert's share of the MoE output. `analysis.sparsity.shared_expert_share`."""
        self._need("shared_expert_share")
        return sparsity.shared_expert_share(self._db, self.scope(layer, label))

    def label_js(self) -> pd.DataFrame:
        """The routing-specialisation probe's (`probes/routing_specialization.py`) JS divergence between labels per
        (model, layer), averaged over label pairs: model (trained, random_init), layer, js_bits, pairs.
        `analysis.sparsity.label_js_by_layer`."""
        self._need("label_divergence")
        return sparsity.label_js_by_layer(self._db, self.scope())

    def label_experts(self, model: str = "trained") -> pd.DataFrame:
        """Each label's most over-represented experts per layer (the probe's `label_experts` table): layer, label,
        rank, expert, fraction, lift. `analysis.sparsity.label_top_experts`."""
        self._need("label_experts")
        return sparsity.label_top_experts(self._db, self.scope(), model)

    def vocab_fixedness(self, threshold: float = 0.9) -> pd.DataFrame:
        """Per (model, layer): tokens seen often enough, and the share of them whose top-1 expert is the same in at
        least `threshold` of their occurrences. `analysis.sparsity.vocab_fixedness`."""
        self._need("vocab_specialisation")
        return sparsity.vocab_fixedness(self._db, self.scope(), threshold)

    def pruning_curves(self) -> pd.DataFrame:
        """The prune what-if (an INTERVENTION, `probes/expert_pruning.py`) per (criterion, fraction): accuracy and
        held-out loss. `analysis.sparsity.pruning_curves`."""
        self._need("expert_pruning")
        return sparsity.pruning_curves(self._db, self.scope())

    # Multi-token prediction (dashboard page: Multi-token prediction)

    def mtp_acceptance(self, by: str = "label", label: str | None = None) -> pd.DataFrame:
        """The MTP head's greedy draft acceptance grouped `by` label, position (bucket of the trunk position) or
        length (of the prompt): rows, accepted, draft_correct, p_accepted. `analysis.mtp.acceptance_by_<by>`."""
        functions = {"label": mtp.acceptance_by_label, "position": mtp.acceptance_by_position,
                     "length": mtp.acceptance_by_length}
        if by not in functions:
            raise ValueError(f"by must be one of {', '.join(functions)}, got {by!r}")
        self._need("mtp")
        return functions[by](self._db, self.scope(label=label))

    def mtp_routing_overlap(self) -> pd.DataFrame:
        """Per trunk layer: the mean Jaccard overlap of the MTP layer's top-k experts at row t with the trunk layer's
        at position t+1: layer, jaccard, rows. `analysis.mtp.mtp_routing_overlap` (the MTP layer's routing rows sit
        under layer index num_hidden_layers)."""
        self._need("mtp")
        self._need("routing")
        return mtp.mtp_routing_overlap(self._db, self.scope(), len(self.facts.layer_kinds))
