"""Multi-token prediction: the MTP head's draft acceptance by prompt label and position, and how its routing
overlaps the trunk's (table `mtp`, `workbench trace --mtp`)."""

import streamlit as st

from workbench.analysis.facts import run_facts
from workbench.analysis.mtp import acceptance_by_label, acceptance_by_length, acceptance_by_position, mtp_routing_overlap
from workbench.app.figures.mtp import acceptance_bars, routing_overlap_bars
from workbench.app.state import query, require_run, show

st.title("Multi-token prediction")
db, manifest, scope = require_run()
if not db.has("mtp") or "mtp" not in manifest.get("tables", []):
    st.info("This run has no `mtp` table. `workbench trace --mtp` runs the checkpoint's multi-token-prediction head "
            "(its `mtp.*` tensors) beside the trunk and records, per position, its draft of the token after next "
            "and whether the trunk would accept it.")
    st.stop()
st.caption("Teacher-forced: row t drafts token t+2 from the trunk's final hidden state at t and token t+1. "
           "Accepted = the draft equals the trunk's own greedy token there (greedy speculative decoding).")
by_label = query(acceptance_by_label, scope)
if not by_label.empty:
    total = (by_label.accepted * by_label.rows).sum() / by_label.rows.sum()
    st.metric("Greedy acceptance (all rows in scope)", f"{total:.1%}")
show(acceptance_bars(by_label, "label", "Draft acceptance by prompt label", "prompt label"), "mtp by label")
columns = st.columns(2)
with columns[0]:
    show(acceptance_bars(query(acceptance_by_position, scope), "bucket", "Draft acceptance by position",
                         "trunk position t"), "mtp by position")
with columns[1]:
    show(acceptance_bars(query(acceptance_by_length, scope), "length", "Draft acceptance by context length",
                         "sequence length (tokens)"), "mtp by length")
facts = run_facts(manifest)
mtp_layer = len(facts.layer_kinds) if facts.layer_kinds else None  # the MTP layer's routing rows: after the trunk's
if mtp_layer is not None and db.has("routing"):
    experts, k = facts.num_experts, facts.top_k
    chance = k / (2 * experts - k) if experts and k else None
    show(routing_overlap_bars(query(mtp_routing_overlap, scope, mtp_layer), mtp_layer, chance), "mtp routing overlap")
