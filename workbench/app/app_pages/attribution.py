"""Attribution: what wrote an answer (direct logit attribution, table `logit_attribution`) and what is necessary for
it (activation patching, table `patching`: an intervention)."""

import streamlit as st

from workbench.analysis.attribution import (attributed_positions, contributions_by_group, contributions_by_layer,
                                            patching_grid, top_components)
from workbench.analysis.facts import run_facts
from workbench.app.figures.attribution import contribution_bars, patching_heatmap
from workbench.app.state import query, require_run, show

st.title("Attribution")
db, manifest, scope = require_run()
label = run_facts(manifest).label
if db.has("logit_attribution") and "logit_attribution" in manifest.get("tables", []):
    positions = query(attributed_positions, scope)
    st.caption("Direct logit attribution: each component's write into the residual stream, through the final norm "
               "(its scale held at the actual position) onto the target's unembedding direction; the components of a "
               "position sum to the model's own logit (difference).")
    groups = query(contributions_by_group, scope)
    show(contribution_bars(query(contributions_by_layer, scope), label,
                           f"Contribution to the answer logit by layer, mean over {len(positions)} attributed "
                           "positions"), "attribution by layer")
    st.dataframe(groups.rename(columns={"value": "mean contribution (logits)", "share": "share of the logit"}),
                 hide_index=True)
    choices = [f"{r.seq_id} @ {r.position} -> {r.target!r}" for r in positions.itertuples()]
    chosen = st.selectbox("One position", range(len(choices)), format_func=choices.__getitem__, key="attr_position")
    row = positions.iloc[chosen]
    show(contribution_bars(query(contributions_by_layer, scope, row.seq_id, int(row.position)), label,
                         f"{row.seq_id}, position {row.position} -> {row.target!r}: model logit "
                         f"{row.model_logit:.3f}, components sum {row.total:.3f}"), "attribution one position")
    left, right = st.columns(2)
    left.markdown("**Top heads** (mean contribution over the positions in scope)")
    left.dataframe(query(top_components, scope, "head"), hide_index=True)
    right.markdown("**Top routed experts** (over the positions where each was chosen)")
    right.dataframe(query(top_components, scope, "expert"), hide_index=True)
else:
    st.info("This run has no `logit_attribution` table. `workbench trace --attribution` attributes the tokens of each "
            "prompt's span named 'answer' (or --attribution-target-id at the last position).")
patching_runs = [m for m in db.trace.manifests() if "patching" in m.get("tables", [])] if db.has("patching") else []
if patching_runs:
    run = patching_runs[-1]
    st.subheader(f"Activation patching (INTERVENTION; run {run['run_id']})")
    st.caption("The corrupted prompt (another pass key) runs with one site taken from the clean prompt; recovery 1 = "
               "the clean answer's logit difference fully restored, 0 = no effect. State sites patch the DeltaNet "
               "state after the range's last token and continue from it.")
    from workbench.analysis.db import Scope

    patch_scope = Scope(run["run_id"], scope.layers)
    for site in ("mixer", "state", "head"):
        show(patching_heatmap(query(patching_grid, patch_scope, site), site, label), f"patching {site}")
else:
    st.info("No `patching` table in this folder yet: `python probes/patching.py --out DIR` sweeps clean / corrupted "
            "passkey pairs.")
