"""probes/patching.py's library side on the nano: a clean / corrupted passkey pair differs only in the key, the run
is labelled an intervention, forwards are counted, and the sweep finds where the nano's pass key reaches the answer
(the attention layer 3 at the last position, which the README reports)."""

import pytest

from workbench.loading import load_model
from workbench.probes.patching import passkey_pair, run_patching
from workbench.trace import open_trace


@pytest.fixture(scope="module")
def nano():
    return load_model("nano", dtype="float32")


def test_pairs_differ_only_in_the_key(nano):
    pair = passkey_pair(nano.tokenizer, 128, 0, 0)
    clean, corrupted = pair["clean"][0], pair["corrupted"][0]
    start, stop = pair["ranges"]["needle"]
    differs = (clean != corrupted).nonzero().squeeze(-1).tolist()
    assert differs and set(differs) <= set(range(start, stop)) and differs[0] == start
    assert pair["answer"] == int(clean[start]) and pair["foil"] == int(corrupted[start]) != pair["answer"]
    assert pair["ranges"]["last"] == (len(clean) - 1, len(clean))


def test_patching_run_on_the_nano(tmp_path, nano):
    run_id, table, forwards = run_patching(nano, tmp_path / "t", pairs=1, length=128, heads=False, progress=False)
    frame = table.to_pandas()
    assert (frame.intervention == "activation_patching").all()
    assert forwards["patched"] == len(frame) and forwards["clean"] == forwards["corrupted"] == 1
    manifest = open_trace(tmp_path / "t").manifests()[0]
    assert manifest["probe"]["intervention"] is True and manifest["probe"]["forwards"] == forwards
    mixers = frame[frame.site == "mixer"].set_index(["layer", "range"]).recovery
    assert mixers[(3, "last")] > 0.9  # the answer reaches the last position through the attention layer 3
    assert mixers.drop((3, "last")).abs().max() < 0.1
