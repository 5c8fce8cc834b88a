"""Columns of the tables `workbench generate` writes besides the capture kinds' (workbench/generation/)."""

from __future__ import annotations

import pyarrow as pa

from .column import SEQ_ID, Column

# Self-speculative decoding with the MTP head (`--speculative mtp`): one row per drafted token, accepted or not.
DRAFTS_COLUMNS = (
    SEQ_ID,
    Column("round", pa.int32(), "Drafting round of the sequence, 0-based: the MTP head drafts up to --draft-tokens "
           "tokens, the trunk verifies them in one forward."),
    Column("draft", pa.int16(), "Index of the drafted token within its round, 0-based."),
    Column("position", pa.int32(), "Absolute position the drafted token would take in the sequence."),
    Column("draft_token_id", pa.int32(), "The token the MTP head drafted."),
    Column("trunk_token_id", pa.int32(), "The trunk's argmax at that position in the verifying forward (given the "
           "drafts before it): what greedy decoding would emit there."),
    Column("accepted", pa.bool_(), "The draft was kept: greedy, it equals the trunk's argmax and every earlier draft "
           "of the round was kept; sampling, the rejection-sampling rule accepted it."),
    Column("p_draft", pa.float32(), "The MTP head's probability of the drafted token, 0..1 (q(draft))."),
    Column("p_trunk", pa.float32(), "The trunk's probability of the drafted token at that position, 0..1 (p(draft))."),
    Column("mtp_topk_ids", pa.list_(pa.uint16()), "The MTP layer's routed experts for the drafting row (router order); "
           "empty for a family without routers.", True),
    Column("trunk_topk_ids", pa.list_(pa.list_(pa.uint16())), "Per trunk MoE layer (in layer order), the routed experts "
           "of the drafted token in the verifying forward; empty without routers.", True),
)

GENERATION_TABLES: dict[str, tuple[Column, ...]] = {"drafts": DRAFTS_COLUMNS}
