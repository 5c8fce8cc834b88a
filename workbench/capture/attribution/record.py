"""What the attribution recorder hands on: AttributionCapture."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class AttributionCapture:
    """Direct logit attribution of one sequence's positions, on the host. P = attributed positions, C = components.

    positions [P] int; targets [P] int; foils [P] int or None; model_logit [P] float64: the model's own logit
    (difference) at each position. Per component c: layer[c] (-1: the embedding), component[c] (schema names),
    head[c], expert[c] (-1: none), values[c] [P] float64 (the contribution at each position), weights[c] [P] float64
    (routing weights of expert rows, NaN elsewhere). Expert rows exist only for experts chosen at some position; an
    expert not chosen at a position contributes 0 there with weight NaN."""

    positions: np.ndarray
    targets: np.ndarray
    foils: np.ndarray | None
    model_logit: np.ndarray
    layer: list[int] = field(default_factory=list)
    component: list[str] = field(default_factory=list)
    head: list[int] = field(default_factory=list)
    expert: list[int] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)

    def add(self, layer: int, component: str, values: np.ndarray, head: int = -1, expert: int = -1,
            weights: np.ndarray | None = None) -> None:
        self.layer.append(layer)
        self.component.append(component)
        self.head.append(head)
        self.expert.append(expert)
        self.values.append(np.asarray(values, dtype=np.float64))
        self.weights.append(np.full(len(self.positions), np.nan) if weights is None else np.asarray(weights, float))

    def totals(self) -> np.ndarray:
        """The components summed per position [P] (equals model_logit within float tolerance)."""
        return np.sum(self.values, axis=0)
