"""Chance level (majority-answer baseline), best constant answer, question priors and the learnability table, on hand-made
records and matrices."""

from types import SimpleNamespace

import pandas as pd
import pytest

from cvitkit.errors import DataError
from cvitkit.eval.chance import chance_score, majority_answer
from cvitkit.report.learnability import diagonal, learnability_table


def _train(*answers):
    return [{"id": str(i), "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": a}]}
            for i, a in enumerate(answers)]


def _test(*answers):
    return [{"question_id": str(i), "text": "Q?", "answer": a} for i, a in enumerate(answers)]


def _task(name, scorer="exact_match"):
    return SimpleNamespace(name=name, scorer=scorer, scorer_params={})


def test_majority_answer_counts_the_last_assistant_turn_and_breaks_ties_by_first_seen():
    assert majority_answer(_train("cat", "dog", "dog", "cat ", "bird")) in ("cat",)  # 'cat ' strips to 'cat'
    assert majority_answer(_train("b", "a", "a", "b")) == "b"


def test_majority_answer_names_the_record_without_an_answer():
    records = _train("a") + [{"id": "x7", "conversations": [{"from": "human", "value": "Q?"}]}]
    with pytest.raises(DataError, match=r"record 1 \(id 'x7'\).*'gpt'"):
        majority_answer(records, "task T")
    with pytest.raises(DataError, match="no training records"):
        majority_answer([], "task T")


def test_chance_is_the_majority_answer_scored_by_the_tasks_scorer():
    # "unanswerable" is the prior: right on 2 of 5 test questions -> 40
    train = _train("unanswerable", "red", "unanswerable", "blue")
    assert chance_score(_task("VizWiz"), train, _test("unanswerable", "red", "unanswerable", "blue", "red")) == 40.0
    # boxes go through the IoU scorer: the majority box overlaps the first test box fully, the second not at all
    boxes = _train("[0.1, 0.1, 0.5, 0.5]", "[0.1, 0.1, 0.5, 0.5]", "[0.6, 0.6, 0.9, 0.9]")
    assert chance_score(_task("Grounding", "iou"), boxes,
                        _test("[0.1, 0.1, 0.5, 0.5]", "[0.6, 0.6, 0.9, 0.9]")) == 50.0


def test_diagonal_reads_r_tt_or_the_single_joint_row():
    seq = pd.DataFrame({"A": [60.0, 20.0], "B": [None, 70.0]}, index=["A", "B"])
    assert diagonal(seq, "A") == 60.0 and diagonal(seq, "B") == 70.0
    joint = pd.DataFrame({"A": [80.0], "B": [75.0]}, index=["chunk_001"])
    assert diagonal(joint, "B") == 75.0
    assert diagonal(seq, "C") is None


def test_table_flags_tasks_learned_by_lora_ft_against_chance():
    suite = SimpleNamespace(tasks=[_task("A"), _task("B")])
    train = {"A": _train("x", "x", "y"), "B": _train("p", "q", "q")}
    test = {"A": _test("x", "y", "z", "z"), "B": _test("q", "q", "p", "p")}  # chance: A 25, B 50
    runs = {"s/lora_ft": pd.DataFrame({"A": [60.0, 10.0], "B": [None, 55.0]}, index=["A", "B"]),
            "s/multitask": pd.DataFrame({"A": [70.0], "B": [65.0]}, index=["chunk_001"]),
            "s/moelora": pd.DataFrame({"A": [40.0, 5.0], "B": [None, 80.0]}, index=["A", "B"]),
            "s/zero_shot": pd.DataFrame({"A": [99.0], "B": [99.0]}, index=["initial"])}
    table = learnability_table(suite, train, test, runs)
    assert table.loc["A", "chance"] == 25.0 and table.loc["B", "chance"] == 50.0
    assert table.loc["A", "best constant"] == 25.0 and table.loc["B", "best constant"] == 50.0
    assert table.loc["A", "LoRA-FT - bar"] == 35.0 and table.loc["A", "learned"] == "yes"
    assert table.loc["B", "LoRA-FT - bar"] == 5.0 and table.loc["B", "learned"] == "no"
    assert table.loc["A", "multitask"] == 70.0
    # zero-shot is not a fine-tune score, so its 99 never counts as the best run
    assert table.loc["A", "best run"] == "multitask" and table.loc["B", "best run"] == "moelora"


def test_best_constant_is_the_best_single_answer_over_training_answers():
    from cvitkit.eval.chance import best_constant_score

    # training majority "A" scores 1/4 on the test set; "B", also a training answer, scores 3/4
    train = _train("A", "A", "A", "B", "C")
    test = _test("B", "B", "A", "B")
    assert chance_score(_task("Sci"), train, test) == 25.0
    assert best_constant_score(_task("Sci"), train, test) == 75.0
    # an answer never seen in training is not a candidate, even if it would score higher
    assert best_constant_score(_task("Sci"), _train("A", "C"), _test("B", "B", "A")) == pytest.approx(100 / 3)
    # only the k most frequent answers are tried
    assert best_constant_score(_task("Sci"), train, test, candidates=1) == 25.0
    with pytest.raises(ValueError, match="candidates"):
        best_constant_score(_task("Sci"), train, test, candidates=0)


def test_a_task_collapsed_to_a_lucky_answer_is_not_learned():
    suite = SimpleNamespace(tasks=[_task("Sci")])
    train = {"Sci": _train("A", "A", "A", "B", "C")}
    test = {"Sci": _test("B", "B", "A", "B")}  # chance 25, best constant 75 ("B")
    runs = {"s/lora_ft": pd.DataFrame({"Sci": [75.0]}, index=["Sci"])}  # e.g. always answering "B"
    table = learnability_table(suite, train, test, runs)
    assert table.loc["Sci", "chance"] == 25.0 and table.loc["Sci", "best constant"] == 75.0
    assert table.loc["Sci", "LoRA-FT - bar"] == 0.0 and table.loc["Sci", "learned"] == "no"


def test_the_three_epoch_run_gets_its_own_columns_only_where_it_ran():
    suite = SimpleNamespace(tasks=[_task("A"), _task("B")])
    train = {"A": _train("x", "x", "y"), "B": _train("p", "q", "q")}
    test = {"A": _test("x", "y", "z", "z"), "B": _test("q", "q", "p", "p")}  # best constant: A 25, B 50
    one = pd.DataFrame({"A": [30.0, 10.0], "B": [None, 55.0]}, index=["A", "B"])
    three = pd.DataFrame({"A": [36.0, 5.0], "B": [None, 59.0]}, index=["A", "B"])
    table = learnability_table(suite, train, test, {"s/lora_ft": one, "s/lora_ft__e3": three})
    assert table["learned"].tolist() == ["no", "no"]
    assert table["LoRA-FT 3 epochs R_tt"].tolist() == [36.0, 59.0]
    assert table["learned at 3 epochs"].tolist() == ["yes", "no"]  # 36 - 25 >= 10; 59 - 50 < 10
    assert table.loc["A", "best run"] == "lora_ft__e3"
    assert "learned at 3 epochs" not in learnability_table(suite, train, test, {"s/lora_ft": one}).columns


def test_learnability_figure_draws_points_above_the_best_constant():
    from cvitkit.report.plots import learnability_figure

    table = pd.DataFrame({"best constant": [25.0, 50.0], "LoRA-FT R_tt": [30.0, 55.0],
                          "LoRA-FT 3 epochs R_tt": [36.0, None], "multitask": [None, None]}, index=["A", "B"])
    fig = learnability_figure(table, "t")
    ax = fig.axes[0]
    heights = sorted(round(bar.get_height(), 1) for c in ax.containers for bar in c if bar.get_height() == bar.get_height())
    assert heights == [5.0, 5.0, 11.0]  # 30-25, 55-50, 36-25; no bar for missing scores or the empty multitask column
    assert any(line.get_ydata()[0] == 10.0 for line in ax.get_lines())  # the learned bar
    assert learnability_figure(table[["best constant"]], "t") is None
    assert learnability_figure(pd.DataFrame(), "t") is None


def test_answer_profile_counts_distinct_answers_and_the_top_share():
    from cvitkit.eval.evaluate import answer_profile

    profile = answer_profile([{"text": "B", "answer": "A"}, {"text": " b", "answer": "B"}, {"text": "A", "answer": "C"},
                              {"text": "B.", "answer": "a red box on a table"}])
    # 'B' and ' b' are one answer; the last is a letter where the reference is a sentence
    assert profile == {"n": 4, "distinct": 3, "top": "b", "top_share": 0.5, "form_match": 0.75}
    assert answer_profile([])["distinct"] == 0


def test_answers_column_shows_a_collapse():
    suite = SimpleNamespace(tasks=[_task("Sci"), _task("Med")])
    train = {"Sci": _train("A", "B"), "Med": _train("x", "y")}
    test = {"Sci": _test("A", "B"), "Med": _test("x", "y")}
    runs = {"s/lora_ft": pd.DataFrame({"Sci": [50.0, 10.0], "Med": [None, 90.0]}, index=["Sci", "Med"])}
    answers = {"s/lora_ft": {"Sci": {"Sci": {"n": 100, "distinct": 1, "top": "b", "top_share": 1.0}},
                             "Med": {"Med": {"n": 100, "distinct": 37, "top": "a very long answer text",
                                             "top_share": 0.09}}}}
    table = learnability_table(suite, train, test, runs, answers=answers)
    assert table.loc["Sci", "LoRA-FT answers"] == '1 · "b" 100%'
    assert table.loc["Med", "LoRA-FT answers"] == '37 · "a very long a…" 9%'
    assert "LoRA-FT answers" not in learnability_table(suite, train, test, runs).columns


def _asked(*pairs):
    """Training records with their own question texts: (question, answer) pairs."""
    return [{"id": str(i), "conversations": [{"from": "human", "value": f"<image>\n{q}"}, {"from": "gpt", "value": a}]}
            for i, (q, a) in enumerate(pairs)]


def _quiz(*pairs):
    return [{"question_id": str(i), "text": f"<image>\n{q}", "answer": a} for i, (q, a) in enumerate(pairs)]


def test_question_prior_answers_each_question_with_its_own_training_majority():
    from cvitkit.eval.chance import best_constant_score, question_prior_score

    # a Fin-like task: yes/no questions are mostly "yes", letter questions mostly "A"
    train = _asked(("Is it rising?", "yes"), ("Is it rising?", "yes"), ("Is it rising?", "no"),
                   ("Which trend? A. up B. down", "A"), ("Which trend? A. up B. down", "A"),
                   ("Which trend? A. up B. down", "B"))
    test = _quiz(("is it  RISING?", "yes"), ("Is it rising?", "no"), ("Which trend? A. up B. down", "A"),
                 ("Which trend? A. up B. down", "A"), ("Never seen?", "yes"))
    # blind guesses: yes, yes, A, A, and the training majority for the unseen question (yes: 3 of 6, first seen)
    assert question_prior_score(_task("Fin"), train, test) == 80.0
    assert best_constant_score(_task("Fin"), train, test) == 40.0  # "yes" or "A" alone: 2 of 5


def test_the_bar_is_the_higher_of_best_constant_and_question_prior():
    suite = SimpleNamespace(tasks=[_task("Fin")])
    train = {"Fin": _asked(("yn?", "yes"), ("yn?", "yes"), ("mc?", "A"), ("mc?", "A"))}
    test = {"Fin": _quiz(("yn?", "yes"), ("yn?", "yes"), ("mc?", "A"), ("mc?", "B"))}  # best constant 50, prior 75
    runs = {"s/lora_ft": pd.DataFrame({"Fin": [80.0]}, index=["Fin"])}
    table = learnability_table(suite, train, test, runs)
    assert table.loc["Fin", "best constant"] == 50.0 and table.loc["Fin", "question prior"] == 75.0
    assert table.loc["Fin", "LoRA-FT - bar"] == 5.0 and table.loc["Fin", "learned"] == "no"  # 30 over the constant


def test_question_type_prior_answers_a_template_it_never_saw_word_for_word():
    from cvitkit.eval.chance import question_prior_score, question_type_prior_score

    # an AD-like task: objects, sides and yes/no are the answers, and the questions are templates
    train = _asked(("Is the truck above or below the cone?", "below"), ("Is the car above or below the bus?", "below"),
                   ("Is the bus above or below the car?", "above"), ("Is the cone left of the car?", "no"),
                   ("Is the car left of the truck?", "yes"), ("Is the bus left of the cone?", "no"),
                   ("What is left of the bus?", "truck"), ("What is left of the truck?", "bus"),
                   ("What is left of the cone?", "car"), ("What is left of the car?", "cone"),
                   ("What is left of the truck?", "cone"), ("Name the shape", "a long caption of six words"))
    # types: above-or-below -> "below" (2 of 3), left-of yes/no -> "no" (2 of 3), what-is-left-of -> "cone"
    # (2 of 5); the majority is "below" (tied with "no" and "cone" at 2, seen first)
    test = _quiz(("Is the cone above or below the bus?", "below"),   # unseen text: prior "below" right, type right
                 ("Is the truck above or below the car?", "above"),  # unseen: both wrong
                 ("Is the truck left of the bus?", "no"),            # unseen: prior "below" wrong, type right
                 ("Is the cone left of the bus?", "yes"),            # unseen: both wrong
                 ("What is left of the bus?", "cone"))               # seen ("truck"): prior wrong, type right
    assert question_prior_score(_task("AD"), train, test) == 20.0
    assert question_type_prior_score(_task("AD"), train, test) == 60.0


def test_question_types_mask_the_words_of_short_answers_only():
    from cvitkit.eval.chance import answer_words, question_type

    slots = answer_words(["below", "traffic cone", "3", "A", "a red car parked on the left side of the road"])
    assert slots == {"below", "traffic", "cone", "3", "a"}  # the caption's words are not slots
    assert question_type("<image>\nIs the Traffic cone BELOW the road?", slots) == "is the _ _ _ the road"
    assert question_type("What is 3+4?", slots) == "what is _ 4"


def test_the_bar_counts_the_question_type_prior():
    suite = SimpleNamespace(tasks=[_task("AD")])
    train = {"AD": _asked(("Is the car above or below the bus?", "below"), ("Is the bus above or below the cone?", "below"),
                          ("Is the bus left of the car?", "no"), ("Is the car left of the cone?", "no"),
                          ("Is the cone left of the bus?", "no"), ("What is left of the car?", "bus"),
                          ("What is left of the bus?", "car"), ("What is left of the truck?", "cone"))}
    test = {"AD": _quiz(("Is the cone above or below the car?", "below"), ("Is the car left of the bus?", "no"),
                        ("Is the cone left of the car?", "yes"), ("Is the cone above or below the bus?", "below"))}
    runs = {"s/lora_ft": pd.DataFrame({"AD": [80.0]}, index=["AD"])}
    table = learnability_table(suite, train, test, runs)
    # best constant "below" 2 of 4; question prior: no test text was asked in training, so "no" (the majority)
    # to each, 1 of 4;
    # by type: below, no, no, below, 3 of 4
    assert table.loc["AD", "best constant"] == 50.0 and table.loc["AD", "question prior"] == 25.0
    assert table.loc["AD", "question-type prior"] == 75.0
    # 30 over the best constant, 5 over the type prior: not learned
    assert table.loc["AD", "LoRA-FT - bar"] == 5.0 and table.loc["AD", "learned"] == "no"
