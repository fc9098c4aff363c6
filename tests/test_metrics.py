"""Continual-learning metrics against hand-computed matrices; AccuracyMatrix building and CSV round trip."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cvitkit.errors import DataError
from cvitkit.eval import metrics
from cvitkit.eval.metrics import (
    AccuracyMatrix,
    average_performance,
    bwt,
    forgetting,
    fwt,
    maa,
    maf,
    map_,
    mean_average_forgetting,
    mean_average_performance,
    mfn,
    mft,
    summarise,
    summarise_stream,
)
from cvitkit.eval.registry import ScoreResult

NAN = float("nan")

# Task-incremental example, rows = stage (after training task t), columns = task:
#
#            task1  task2  task3
#   stage1 [  80     20     nan ]
#   stage2 [  85     70     30  ]
#   stage3 [  50     65     90  ]
#
# MFN = (50 + 65 + 90) / 3                                  = 68.333...
# MAA = (80 + (85 + 70)/2 + (50 + 65 + 90)/3) / 3
#     = (80 + 77.5 + 68.333...) / 3                         = 75.2777...
# MFT = (80 + 70 + 90) / 3                                  = 80
# BWT = ((50 - 80) + (65 - 70)) / 2                         = -17.5
# F   = (max(80, 85) - 50  +  max(70) - 65) / 2 = (35 + 5)/2 = 20   (task 1 peaked after learning task 2)
# FWT with zero-shot R0 = [10, 15, 25]: ((R[1,2] - 15) + (R[2,3] - 25)) / 2 = ((20 - 15) + (30 - 25)) / 2 = 5
R = np.array([[80, 20, NAN], [85, 70, 30], [50, 65, 90]], dtype=float)
ZERO_SHOT = [10, 15, 25]


def test_task_incremental_hand_computed():
    assert mfn(R) == pytest.approx(205 / 3)
    assert metrics.acc(R) == metrics.last(R) == mfn(R)
    assert maa(R) == pytest.approx((80 + 77.5 + 205 / 3) / 3)
    assert mft(R) == pytest.approx(80)
    assert bwt(R) == pytest.approx(-17.5)
    assert forgetting(R) == pytest.approx(20)
    assert fwt(R, ZERO_SHOT) == pytest.approx(5)


def test_summarise():
    out = summarise(R, zero_shot=ZERO_SHOT)
    assert out["T"] == 3
    assert out == pytest.approx({"T": 3, "MFN": 205 / 3, "MAA": (80 + 77.5 + 205 / 3) / 3, "MFT": 80, "BWT": -17.5,
                                 "Forgetting": 20, "FWT": 5})
    assert "FWT" not in summarise(R)


def test_upper_triangle_may_be_missing():
    lower = R.copy()
    lower[0, 1] = lower[1, 2] = NAN
    assert mfn(lower) == mfn(R) and maa(lower) == maa(R) and bwt(lower) == bwt(R)
    with pytest.raises(DataError, match=r"R\[1,2\]"):
        fwt(lower, ZERO_SHOT)


def test_single_task_gives_nan_not_a_crash():
    one = np.array([[42.0]])
    assert mfn(one) == maa(one) == mft(one) == 42.0
    assert math.isnan(bwt(one)) and math.isnan(forgetting(one)) and math.isnan(fwt(one, [0.0]))
    assert math.isnan(summarise(one)["BWT"])


def test_shape_and_missing_cell_errors():
    with pytest.raises(DataError, match="square"):
        mfn(np.ones((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        maa(np.ones(3))
    broken = R.copy()
    broken[2, 0] = NAN
    with pytest.raises(DataError, match=r"R\[3,1\]"):
        bwt(broken)
    with pytest.raises(DataError, match="3 zero-shot scores"):
        fwt(R, [1, 2])


# Streaming example, 4 chunks x 3 tasks (task k first appears in chunk k):
#
#            t1   t2   t3
#   chunk1 [ 50   65    0 ]   AP = 115/3 = 38.333
#   chunk2 [ 40   60    5 ]   AP = 35
#   chunk3 [ 45   50   70 ]   AP = 55
#   chunk4 [ 30   55   61 ]   AP = 146/3 = 48.667        MAP = (115/3 + 35 + 55 + 146/3) / 4 = 177/4 = 44.25
#
# MAF, all tasks, forgetting max_{t'<t} s[t',k] - s[t,k]:
#   chunk2: (50-40, 65-60, 0-5)   = (10, 5, -5)    -> 10/3
#   chunk3: (50-45, 65-50, 5-70)  = (5, 15, -65)   -> -45/3
#   chunk4: (50-30, 65-55, 70-61) = (20, 10, 9)    -> 39/3
#   MAF = (10 - 45 + 39) / 9 = 4/9;   clipped at 0: (15 + 20 + 39) / 9 = 74/9
# seen_only (first_seen = chunks 1, 2, 3):
#   AP = (50, (40+60)/2 = 50, 55, 146/3)               -> MAP = (155 + 146/3) / 4
#   MAF: chunk2: t1 only: 10;  chunk3: t1 5, t2 60-50 = 10 (max from chunk2 on, not 65) -> 7.5
#        chunk4: t1 20, t2 max(60,50)-55 = 5, t3 70-61 = 9 -> 34/3;   MAF = (10 + 7.5 + 34/3) / 3
S = np.array([[50, 65, 0], [40, 60, 5], [45, 50, 70], [30, 55, 61]], dtype=float)


def test_stream_all_tasks():
    assert average_performance(S) == pytest.approx([115 / 3, 35, 55, 146 / 3])
    assert map_(S) == mean_average_performance(S) == pytest.approx(44.25)
    assert maf(S) == mean_average_forgetting(S) == pytest.approx(4 / 9)
    assert maf(S, clip_negative=True) == pytest.approx(74 / 9)


def test_stream_task_subset():
    # K = {t1, t3}: AP = (25, 22.5, 57.5, 45.5)
    assert average_performance(S, tasks=[0, 2]) == pytest.approx([25, 22.5, 57.5, 45.5])
    frame = pd.DataFrame(S, columns=["AD", "Fin", "RS"])
    assert map_(frame, tasks=["AD", "RS"]) == pytest.approx((25 + 22.5 + 57.5 + 45.5) / 4)
    # MAF over K = {t1, t3}: chunk2 (10 - 5)/2, chunk3 (5 - 65)/2, chunk4 (20 + 9)/2
    assert maf(frame, tasks=["AD", "RS"]) == pytest.approx((2.5 - 30 + 14.5) / 3)
    with pytest.raises(DataError, match="unknown task 'GQA'"):
        map_(frame, tasks=["GQA"])
    with pytest.raises(DataError, match="named columns"):
        map_(S, tasks=["AD"])


def test_stream_seen_only():
    expected_map = (155 + 146 / 3) / 4
    expected_maf = (10 + 7.5 + 34 / 3) / 3
    assert average_performance(S, seen_only=True, first_seen=[0, 1, 2]) == pytest.approx([50, 50, 55, 146 / 3])
    assert map_(S, seen_only=True, first_seen=[0, 1, 2]) == pytest.approx(expected_map)
    assert maf(S, seen_only=True, first_seen=[0, 1, 2]) == pytest.approx(expected_maf)
    # the same from NaN cells before a task appears (first_seen inferred)
    masked = S.copy()
    masked[0, 1] = masked[0, 2] = masked[1, 2] = NAN
    assert map_(masked, seen_only=True) == pytest.approx(expected_map)
    assert maf(masked, seen_only=True) == pytest.approx(expected_maf)
    frame = pd.DataFrame(S, columns=["a", "b", "c"])
    assert maf(frame, seen_only=True, first_seen={"a": 0, "b": 1, "c": 2}) == pytest.approx(expected_maf)
    with pytest.raises(DataError, match="seen_only=True"):
        map_(masked)


def test_summarise_stream():
    frame = pd.DataFrame(S, columns=["AD", "Fin", "RS"], index=["c1", "c2", "c3", "c4"])
    out = summarise_stream(frame, ap_tasks=["AD", "Fin", "RS"])
    assert out["N"] == 4 and out["tasks"] == ["AD", "Fin", "RS"]
    assert out["AP"] == pytest.approx([115 / 3, 35, 55, 146 / 3])
    assert out["MAP"] == pytest.approx(44.25) and out["MAF"] == pytest.approx(4 / 9)
    assert out["final_AP"] == pytest.approx(146 / 3)
    assert out["task_mean"] == pytest.approx({"AD": 41.25, "Fin": 57.5, "RS": 34})
    assert summarise_stream(frame, clip_negative=True)["MAF"] == pytest.approx(74 / 9)
    assert math.isnan(maf(S[:1]))   # one chunk: nothing to forget


def test_accuracy_matrix_from_scores_and_csv(tmp_path):
    tasks = ["ScienceQA", "TextVQA", "ImageNet"]
    scores = {
        0: {"ScienceQA": 80, "TextVQA": 20},
        1: {"ScienceQA": 85, "TextVQA": 70, "ImageNet": 30},
        2: {"ScienceQA": ScoreResult("exact_match", 50.0, [], 0), "TextVQA": 65, "ImageNet": 90},
    }
    am = AccuracyMatrix.from_scores(scores, tasks)
    assert am.stages == tasks and am.shape == (3, 3)
    np.testing.assert_array_equal(np.asarray(am), R)
    assert summarise(am, zero_shot={"ScienceQA": 10, "TextVQA": 15, "ImageNet": 25})["FWT"] == pytest.approx(5)
    assert am.summarise()["BWT"] == pytest.approx(-17.5)

    frame = am.to_frame()
    assert list(frame.columns) == tasks and frame.index.name == "stage"
    path = am.to_csv(tmp_path / "sub" / "matrix.csv")
    back = AccuracyMatrix.from_csv(path)
    assert back.tasks == tasks and back.stages == tasks
    np.testing.assert_array_equal(back.values, R)
    assert AccuracyMatrix.from_frame(frame).tasks == tasks

    with pytest.raises(DataError, match="not in the task order"):
        AccuracyMatrix.from_scores({0: {"GQA": 1.0}}, tasks)
    with pytest.raises(DataError, match="out of range"):
        AccuracyMatrix.from_scores({5: {"ImageNet": 1.0}}, tasks)


def test_accuracy_matrix_stream_with_stage_names():
    stages = ["chunk_01", "chunk_02", "chunk_03", "chunk_04"]
    scores = {name: dict(zip(["AD", "Fin", "RS"], row)) for name, row in zip(stages, S.tolist())}
    am = AccuracyMatrix.from_scores(scores, ["AD", "Fin", "RS"], stages=stages)
    assert am.stages == stages
    assert am.summarise_stream(["AD", "RS"])["MAP"] == pytest.approx((25 + 22.5 + 57.5 + 45.5) / 4)
    with pytest.raises(DataError, match="square"):
        am.summarise()
    assert AccuracyMatrix(np.zeros((2, 3)), ["a", "b", "c"]).stages == ["stage_1", "stage_2"]
