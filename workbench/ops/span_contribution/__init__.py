"""DeltaNet span contributions: how much of a gated delta-rule layer's output at token t was written by named spans
of earlier tokens (the linear-attention analogue of attention's needle mass).

`naive_span_contributions` is the fp64 reference (explicit sum over every earlier token); `span_contributions`
gathers only the spans' keys and corrected values, from the layer's inputs or from fla's v_new and output.
"""

from .gathered import cumulative_log_decay_at, span_contributions
from .naive import SpanContributions, naive_span_contributions

__all__ = ["SpanContributions", "cumulative_log_decay_at", "naive_span_contributions", "span_contributions"]
