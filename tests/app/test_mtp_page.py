"""The Multi-token prediction page under AppTest: its figures on the hand-written MTP trace, its empty state on a
trace without an `mtp` table; and the figure functions' numbers."""

from test_pages import chart_titles, run_page

from hand_trace import write_mtp_trace
from workbench.app.figures.mtp import acceptance_bars, routing_overlap_bars


def test_mtp_page_renders_acceptance_and_overlap(tmp_path):
    run_id = write_mtp_trace(tmp_path / "trace")
    at = run_page(tmp_path / "trace", "mtp", run_id=run_id)
    assert not at.exception, [e.value for e in at.exception]
    titles = chart_titles(at)
    for words in ("Draft acceptance by prompt label", "Draft acceptance by position", "by context length",
                  "Expert overlap: the MTP layer (routing rows under layer index 4)"):
        assert any(words in title for title in titles), titles
    assert any(metric.value == "66.7%" for metric in at.metric)  # 2 of 3 rows accepted


def test_mtp_page_empty_state(tmp_path):
    from hand_trace import write_hand_trace

    write_hand_trace(tmp_path / "trace", skip=("mtp",))
    at = run_page(tmp_path / "trace", "mtp")
    assert not at.exception
    assert any("no `mtp` table" in info.value for info in at.info)
    assert not chart_titles(at)


def test_figures_hold_the_numbers():
    import pandas as pd

    frame = pd.DataFrame({"label": ["x", "y"], "rows": [2, 1], "accepted": [0.5, 1.0], "ties": [0.5, 0.0],
                          "draft_correct": [1.0, None]})
    figure = acceptance_bars(frame, "label", "t", "label")
    assert [list(trace.y) for trace in figure.data][:2] == [[0.5, 1.0], [0.5, 0.0]]  # accepted, then ties apart
    assert figure.data[1].name == "exact ties (neither)" and figure.layout.xaxis.type == "category"
    overlap = routing_overlap_bars(pd.DataFrame({"layer": [0, 2], "jaccard": [0.2, 0.1], "rows": [3, 3]}), 4, 0.33)
    assert list(overlap.data[0].x) == ["L0", "L2"] and list(overlap.data[0].y) == [0.2, 0.1]
    assert "L4" not in overlap.layout.title.text  # the MTP layer is not drawn as a fifth decoder layer
