"""Overview: the trace's runs, the chosen run's manifest and model config, sizes and bytes per token per run."""

import pandas as pd
import streamlit as st

from workbench.analysis.summary import run_sizes
from workbench.app.figures.views import run_sizes_figure
from workbench.app.state import require_run, show

st.title("Overview")
db, manifest, scope = require_run()
if db.trace.note:
    st.warning(db.trace.note)
manifests = db.trace.manifests()
st.subheader(f"{len(manifests)} runs in {db.path}")
st.dataframe(pd.DataFrame([{
    "run": m["run_id"], "model": m["model"]["source"], "architecture": m["model"]["architecture"],
    "config hash": m["model"]["config_hash"], "sequences": len(m["prompts"]), "tokens": m["num_tokens"],
    "tables": ", ".join(m.get("tables", [])),
} for m in manifests]), hide_index=True)

sizes = run_sizes(db.trace)
show(run_sizes_figure(sizes), "bytes per token per run")
with st.expander("Sizes per run and table"):
    st.dataframe(sizes, hide_index=True)

st.subheader(f"Run {manifest['run_id']}")
left, right = st.columns(2)
kinds = manifest.get("layer_kinds", [])
left.markdown(
    f"**{manifest['model']['source']}** · {len(kinds)} layers: {kinds.count('linear_attention')} DeltaNet, "
    f"{kinds.count('full_attention')} attention, {len(manifest.get('moe_layers', []))} MoE · "
    f"{manifest['num_tokens']} tokens in {len(manifest['prompts'])} sequences")
left.dataframe(pd.DataFrame([{"id": p["id"], "label": p.get("label"), "tokens": p.get("num_tokens"),
                               "spans": ", ".join(s["name"] for s in p.get("spans", []))}
                              for p in manifest["prompts"]]), hide_index=True)
right.markdown("**Capture settings**")
right.json(manifest.get("capture", {}), expanded=False)
with st.expander("Model config"):
    st.json(manifest["model"].get("config", {}), expanded=False)
with st.expander("Full manifest"):
    st.json({k: v for k, v in manifest.items() if k != "prompts"}, expanded=False)
