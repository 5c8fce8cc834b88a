"""Generation: a generated sequence token by token coloured by a measure, routing drift from the prompt into the
generated tokens, and MTP draft acceptance (runs of `workbench generate`)."""

import streamlit as st

from workbench.analysis import tokens
from workbench.analysis.generation import draft_acceptance, generation_tokens, routing_drift
from workbench.app.figures.common import layer_label
from workbench.app.figures.generation import LOGPROB, draft_bars, drift_bars, token_grid
from workbench.app.state import query, require_run, scope_of, show

st.title("Generation")
db, manifest, scope = require_run()
if "generation" not in manifest:
    st.info("This run is not a generation. `workbench generate --model ... --text ... --max-new-tokens N` traces the "
            "prompt and every generated token (column `phase`: prefill | decode).")
    st.stop()
options = manifest["generation"]
mode = "greedy" if not options.get("temperature") else (f"sampled (temperature {options['temperature']}, top-p "
                                                        f"{options.get('top_p')}, seed {options.get('seed')})")
speculative = (f", speculative {options['speculative']} ({options['draft_tokens']} drafts per round)"
               if options.get("speculative") else "")
st.caption(f"{mode}{speculative}; up to {options.get('max_new_tokens')} new tokens per prompt.")
records = {p["id"]: p for p in manifest["prompts"]}
left, middle, right = st.columns(3)
seq_id = left.selectbox("Sequence", list(records), key="generation_seq")
record = records[seq_id]
st.markdown(f"**Generated** ({record.get('new_tokens')} tokens after a {record.get('prompt_tokens')}-token prompt, "
            f"stopped by {record.get('stop_reason')}):")
st.code(record.get("generated_text", ""), language=None)
measures = [LOGPROB] + [m for m, (table, _, _) in tokens.TOKEN_METRICS.items() if db.has(table)]
measure = middle.selectbox("Colour tokens by", measures, key="generation_measure")
frame = query(generation_tokens, scope_of(scope.run_id), seq_id)
title = f"{seq_id}: tokens coloured by {measure}"
if measure == LOGPROB:
    frame = frame.rename(columns={"logprob": "value"})
else:
    layer = right.selectbox("Layer", tokens.metric_layers(db, scope, measure), format_func=layer_label,
                            key="generation_layer")
    values = tokens.token_metric(db, scope_of(scope.run_id), seq_id, layer, measure)[["position", "value"]]
    frame = frame.drop(columns="logprob").merge(values, on="position", how="left")
    title += f" at {layer_label(layer)}"
show(token_grid(frame, measure, title), "generation tokens")
if db.has("routing"):
    show(drift_bars(query(routing_drift, scope)), "generation routing drift")
if db.has("drafts"):
    show(draft_bars(query(draft_acceptance, scope)), "generation drafts")
