"""Columns of the mtp kind's table."""

from __future__ import annotations

import pyarrow as pa

from ...trace.column import SEQ_ID, Column

# Multi-token prediction (capture/mtp/): one row per trunk position t = 0 .. T-2 of a sequence; the MTP head's
# row t reads h_t (the trunk's final-normed hidden) and token t+1 and drafts token t+2.
MTP_COLUMNS = (
    SEQ_ID,
    Column("position", pa.int32(), "Trunk position t of the row (0-based); the draft is for token t+2."),
    Column("draft_token_id", pa.int32(), "The MTP head's greedy draft of token t+2 (argmax of its logits)."),
    Column("trunk_token_id", pa.int32(), "The trunk's own greedy token at t+1 (its prediction of token t+2)."),
    Column("accepted", pa.bool_(), "draft == trunk's greedy token: greedy speculative decoding would accept it."),
    Column("draft_correct", pa.bool_(), "draft == the actual token t+2; null on the last row (t = T-2), whose t+2 "
           "is past the sequence.", True),
    Column("p_accepted", pa.float32(), "The MTP head's probability of the trunk's greedy token, 0..1 (the chance a "
           "temperature-1 draft would match a greedy trunk)."),
    Column("tie", pa.bool_(), "The trunk's two largest logits at t+1, or the head's at row t, are exactly equal: the "
           "greedy token is arbitrary there, so analyses count the row as a tie, neither accepted nor rejected (null "
           "in files before schema 1.3).", True),
)

