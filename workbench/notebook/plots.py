"""`run.plot`: the dashboard's figures of a run's questions, as plotly Figures (Jupyter displays them).

Each method asks the Run its question (the same DataFrame the method of the same name returns) and hands it to the
figure function the dashboard page uses (`workbench.app.figures`); nothing is computed here.
"""

from __future__ import annotations

import plotly.graph_objects as go

from ..analysis.long_context import SWEEP_VALUES, model_grid
from ..analysis.routing import ROUTER_METRICS
from ..app.figures import attention, deltanet, long_context, mtp, routing, sparsity, views
from ..app.figures.common import quantile_boxes


class RunPlots:
    """Figures of one Run (`run.plot`); every method takes the filters of the Run method of the same name."""

    def __init__(self, run):
        self._run = run

    def expert_load(self, layer=None, label: str | None = None) -> go.Figure:
        """Layer x expert heatmap of the fraction of top-k slots (Routing & sparsity)."""
        return routing.expert_load_heatmap(self._run.expert_load(layer, label))

    def load_balance(self, layer=None, label: str | None = None) -> go.Figure:
        """Balance per layer: CV, max/mean, normalised entropy, share of the busiest 1%."""
        return routing.balance_figure(self._run.load_balance(layer, label))

    def router_confidence(self, metric: str = "router_entropy", layer=None, label: str | None = None) -> go.Figure:
        """One box per layer of a router metric's distribution over tokens (whiskers 5-95%)."""
        title = ROUTER_METRICS.get(metric, metric)
        return quantile_boxes(self._run.router_confidence(metric, layer, label), f"{title} per token", title)

    def needle_mass(self, span: str = "needle", layer=None, label: str | None = None) -> go.Figure:
        """Layer x head heatmap of the attention mass on `span` (Attention recall)."""
        return attention.span_mass_heatmap(self._run.needle_mass(span, layer, label), span)

    def attention_sinks(self, layer=None, label: str | None = None) -> go.Figure:
        """Layer x head heatmap of the weight on token 0."""
        return attention.sink_heatmap(self._run.attention_sinks(layer, label))

    def retrieval_heads(self) -> go.Figure:
        """Layer x head heatmap of retrieval scores."""
        return attention.retrieval_heatmap(self._run.retrieval_heads())

    def state_norms(self, seq_id: str, layer=None, log_y: bool = True) -> go.Figure:
        """||S_t||_F against position per DeltaNet layer for one prompt, its spans marked (DeltaNet state)."""
        spans = self._run._db.frame("SELECT span, start_token, end_token FROM spans WHERE run_id = ? AND seq_id = ?",
                                    [self._run.id, seq_id]) if self._run._db.has("spans") else None
        return deltanet.state_norm_figure(self._run.state_norms(seq_id, layer), spans, log_y)

    def state_half_lives(self, layer=None, label: str | None = None) -> go.Figure:
        """Layer x head heatmap of the memory half-life (tokens, log10)."""
        return deltanet.half_life_heatmap(self._run.state_half_lives(layer, label))

    def needle_by_layer(self, span: str = "needle", label: str | None = None) -> go.Figure:
        """Attention mass beside DeltaNet needle contribution per layer (Long context)."""
        return long_context.needle_by_layer_figure(self._run.needle_by_layer(span, label), span)

    def needle_sweep(self, value: str = "exact_match", layer: int | None = None) -> go.Figure:
        """Context length x needle depth heatmap: exact match for the model, or `value` at one `layer`."""
        if value == "exact_match":  # a model-level outcome, repeated on every layer's rows
            return views.sweep_heatmap(model_grid(self._run.needle_sweep(value)), "Exact-match accuracy (model)",
                                       SWEEP_VALUES[value], 1.0)
        if layer is None:
            raise ValueError(f"{value} is per layer: give layer=")
        zmax = 1.0 if value == "needle_mass" else None
        return views.sweep_heatmap(self._run.needle_sweep(value, layer), f"L{layer}: {SWEEP_VALUES[value]}",
                                   SWEEP_VALUES[value], zmax)

    def expert_saliency(self, value: str = "reap", layer=None, label: str | None = None) -> go.Figure:
        """Layer x expert heatmap of REAP (or count, gate_mean, output_norm_mean) (Sparsity probes)."""
        return sparsity.saliency_heatmap(self._run.expert_saliency(layer, label), value)

    def pruning_curves(self, value: str = "accuracy") -> go.Figure:
        """The prune what-if's accuracy (or loss) against the fraction of experts masked, per criterion."""
        return sparsity.pruning_figure(self._run.pruning_curves(), value)

    def mtp_acceptance(self, by: str = "label", label: str | None = None) -> go.Figure:
        """Draft acceptance bars by label, position bucket or prompt length (Multi-token prediction)."""
        category, axis = {"label": ("label", "prompt label"), "position": ("bucket", "trunk position t"),
                          "length": ("length", "sequence length (tokens)")}[by]
        return mtp.acceptance_bars(self._run.mtp_acceptance(by, label), category, f"Draft acceptance by {by}", axis)
