"""Streams: task-incremental experiences and StrCVIT-like chunk streams (appear, recur, fade)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from cvitkit.data import (
    DataConfig,
    build_suite,
    chunk_stream,
    load_suite,
    load_suite_data,
    plan_stream,
    stream_properties,
    task_stream,
)
from cvitkit.errors import DataError

TASKS = load_suite("strcvit").task_names


@pytest.fixture(scope="module")
def strcvit(tmp_path_factory):
    root = tmp_path_factory.mktemp("streams")
    cfg = DataConfig(train_per_task=8, test_per_task=2, stream_chunk_size=12)
    build_suite("strcvit", cfg, root, progress=False)
    return load_suite_data("strcvit", root), root / "strcvit"


@pytest.mark.parametrize("n_chunks", [15, 20, 25])
@pytest.mark.parametrize("chunk_size", [12, 200])
def test_plan_properties(n_chunks, chunk_size):
    plan = plan_stream(TASKS, n_chunks, chunk_size, seed=0)
    props = stream_properties(plan, TASKS)
    assert props["n_chunks"] == n_chunks and not props["empty_chunks"] and not props["missing_tasks"]
    assert props["recurring_tasks"], "some task must come back after being absent"
    assert all(sum(c.values()) == chunk_size for c in plan)
    firsts = sorted(props["first_chunk"].values())
    assert firsts[0] == 1 and firsts[-1] > n_chunks // 2, "tasks appear progressively"
    # tasks fade: all but the last entrants are absent from some chunk after their first appearance
    faded = [t for t in TASKS if any(t not in c for c in plan[props["first_chunk"][t]:])]
    assert len(faded) >= len(TASKS) - 2
    assert plan == plan_stream(TASKS, n_chunks, chunk_size, seed=0)
    assert plan != plan_stream(TASKS, n_chunks, chunk_size, seed=1)


def test_chunk_streams_match_their_composition(strcvit):
    data, folder = strcvit
    assert sorted(data.chunks) == [15, 20, 25]
    for n in (15, 20, 25):
        stream = chunk_stream(data, n)
        assert len(stream) == n and stream[0].is_first and stream[-1].is_last and not stream[1].is_first
        comp = json.loads((folder / f"stream_{n}" / "composition.json").read_text())
        seen = set()
        for exp, entry in zip(stream, comp["chunks"]):
            assert exp.task_name is None and exp.task_id is None  # no task identity in a stream
            assert len(exp) == 12 and exp.task_counts == entry["counts"] == exp.origin["composition"]
            assert all(r["chunk"] == exp.index + 1 for r in exp.records)
            seen |= set(exp.task_counts)
        assert seen == set(TASKS)
        assert comp["properties"]["recurring_tasks"] and not comp["properties"]["empty_chunks"]
        item = stream[3].dataset[0]
        assert item["pil_image"].size == (64, 64)
    # the same sample (id) carries the same content wherever it appears
    ids = Counter(r["id"] for exp in chunk_stream(data, 25) for r in exp.records)
    assert max(ids.values()) == 1, "a stream never repeats a sample"
    with pytest.raises(DataError, match="no 30-chunk stream.*15, 20, 25"):
        chunk_stream(data, 30)


def test_task_stream_follows_the_paper_order(strcvit, tmp_path):
    build_suite("mllmcl_dcl", DataConfig(train_per_task=4, test_per_task=2), tmp_path, progress=False)
    data = load_suite_data("mllmcl_dcl", tmp_path)
    stream = task_stream(data)
    assert [e.task_name for e in stream] == ["RS", "Med", "AD", "Sci", "Fin"]
    assert [e.task_id for e in stream] == [0, 1, 2, 3, 4]
    assert stream[0].is_first and stream[-1].is_last and len(stream[2]) == 4
    assert {r["task"] for r in stream[4].records} == {"Fin"}
    assert len(task_stream(strcvit[0])) == 11  # a stream suite can also be run task by task (joint/oracle)
