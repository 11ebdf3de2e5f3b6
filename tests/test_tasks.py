"""Question suites: deterministic generators, scoring rules, clear errors."""

import numpy as np
import pytest

from topovlm import TopoVLMInputError, tasks
from topovlm.evaluate import relative_score
from topovlm.models import Sample
from topovlm.tasks import QA, avqa, is_correct, normalise


def test_av_clip_is_a_pure_function_of_split_seed_and_index():
    a, b = avqa.clip("test", 0, 5), avqa.clip("test", 0, 5)
    assert np.array_equal(a.video, b.video) and np.array_equal(a.audio, b.audio)
    assert (a.shape, a.colour, a.direction, a.sound, a.loud, a.contour, a.tempo) == (
        b.shape,
        b.colour,
        b.direction,
        b.sound,
        b.loud,
        b.contour,
        b.tempo,
    )
    assert a.video.shape == (8, 32, 32, 3) and a.video.dtype == np.uint8
    assert a.audio.shape == (4000,) and np.abs(a.audio).max() <= 1


def test_av_train_and_test_streams_differ():
    train, test = avqa.clip("train", 0, 0), avqa.clip("test", 0, 0)
    assert not np.array_equal(train.video, test.video)
    assert not np.array_equal(avqa.clip("test", 0, 1).audio, test.audio)


def test_av_suites_are_deterministic_and_balanced():
    a = tasks.load("av", split="test", n=20)
    b = tasks.load("av", split="test", n=20)
    assert [(q.sample.text, q.answer) for q in a] == [(q.sample.text, q.answer) for q in b]
    assert [len(v) for v in tasks.by_suite(a).values()] == [20, 20, 20, 20]
    assert list(tasks.by_suite(a)) == list(tasks.TASKS["av"])
    # every suite's answers vary (no suite answerable by a constant)
    for suite, qs in tasks.by_suite(a).items():
        assert len({q.answer for q in qs}) > 1, suite


def test_the_moving_shape_moves_the_way_the_answer_says():
    for i in range(12):
        c = avqa.clip("test", 3, i)
        colour = np.array(avqa.COLOURS[c.colour])
        where = [np.argwhere((f == colour).all(-1)).mean(0) for f in c.video[[0, -1]]]  # (row, col)
        drow, dcol = where[1] - where[0]
        expected = {"left": dcol < -8, "right": dcol > 8, "up": drow < -8, "down": drow > 8}[c.direction]
        assert expected, (c.direction, drow, dcol)


def test_the_melody_goes_the_way_the_answer_says():
    for i in range(12):
        c = avqa.clip("test", 4, i)
        a = c.audio
        half = len(a) // 2

        def pitch(x):  # zero crossings per sample, on the loudest part
            x = x[np.abs(x) > 0.5 * np.abs(x).max()]
            return np.mean(np.abs(np.diff(np.sign(x))) > 0)

        rises = pitch(a[half:]) > pitch(a[:half])
        assert rises == (c.contour == "up"), i


def test_multiple_choice_answer_letter_points_at_the_right_option():
    import re

    for i in range(16):
        q, c = avqa.question("test", 0, i, "temporal"), avqa.clip("test", 0, i)
        options = dict(re.findall(r"([A-D])\. (.+?)(?= [A-D]\. |$)", q.sample.text))
        assert sorted(options) == ["A", "B", "C", "D"] and q.options == ("A", "B", "C", "D")
        assert options[q.answer] in (c.direction, avqa.START[c.direction])


def test_easy_vqa_questions_come_with_their_kind():
    qs = tasks.load("easy-vqa", split="test", n=50, seed=1)
    assert qs == tasks.load("easy-vqa", split="test", n=50, seed=1)
    assert qs != tasks.load("easy-vqa", split="test", n=50, seed=2)
    for q in qs:
        assert q.suite in tasks.TASKS["easy-vqa"]
        assert q.sample.image is not None
    assert {q.suite for q in tasks.load("easy-vqa", suite="shape", n=20)} == {"shape"}
    assert len(tasks.load("easy-vqa", split="test")) == 9673


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        (dict(task="vqa-v2"), "unknown task"),
        (dict(task="av", suite="speech"), "unknown suite"),
        (dict(task="easy-vqa", suite="music"), "unknown suite"),
        (dict(task="av", split="validation"), "unknown split"),
        (dict(task="av", n=0), "positive"),
        (dict(task="easy-vqa", suite="shape", n=10**6), "has"),
    ],
)
def test_bad_suite_requests_are_clear_errors(kwargs, msg):
    with pytest.raises(TopoVLMInputError, match=msg):
        tasks.load(**kwargs)


def test_an_empty_split_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(avqa, "questions", lambda **kw: [])
    with pytest.raises(TopoVLMInputError, match="has no questions"):
        tasks.load("av", split="test")


def test_scoring_normalises_answers():
    q = QA(Sample("what shape?"), "circle", "shape")
    assert is_correct(q, "Circle.") and is_correct(q, " a circle") and is_correct(q, "The circle")
    assert not is_correct(q, "circles") and not is_correct(q, "a red circle") and not is_correct(q, "")
    mc = QA(Sample("which way? A. up B. down"), "B", "temporal", ("A", "B", "C", "D"))
    assert is_correct(mc, "B") and is_correct(mc, "(B) down") and is_correct(mc, "b.")
    assert not is_correct(mc, "A") and not is_correct(mc, "Both")
    assert normalise("  Yes!! ") == "yes"


def test_relative_score_is_the_mean_of_per_suite_ratios():
    full = {"a": 0.8, "b": 1.0, "all": 0.9}
    assert relative_score({"a": 0.4, "b": 1.0, "all": 0.7}, full) == pytest.approx(0.75)
    with pytest.raises(TopoVLMInputError, match="same suites"):
        relative_score({"a": 0.4}, full)


def test_sweep_table_has_a_row_per_method_and_the_random_mean():
    from topovlm.studies.sweep import SweepRow, sweep_table

    full = SweepRow(0.0, "full model", -1, (), {"a": 0.8, "b": 1.0, "all": 0.9}, 1.0, 0.0)
    rows = [SweepRow(0.5, "topovlm", 0, (1, 2, 3), {"a": 0.8, "b": 0.9, "all": 0.85}, 0.95, 1.0)]
    rows += [
        SweepRow(0.5, "random", s, (s, 5), {"a": 0.4 + 0.2 * s, "b": 0.5, "all": 0.5}, 0.5 + 0.1 * s, 0.0)
        for s in range(2)
    ]
    table = sweep_table(full, rows, reported={"topovlm": "91.6 %"})
    lines = table.splitlines()
    assert lines[0].startswith("| sparsity | method | layers removed | a | b | all | relative score | paper (reported)")
    assert "| - | full model | - | 80.0 | 100.0 | 90.0 | 1.000 |" in table
    assert "| 50% | topovlm | 1-3 | 80.0 | 90.0 | 85.0 | 0.950 | 91.6 % |" in table
    assert "| 50% | random (mean of 2) |  | 50.0 | 50.0 | 50.0 | 0.550 |" in table
    assert len(lines) == 2 + 1 + 3 + 1
    on = sweep_table(full, rows, reported={"topovlm": "91.6 %"}, reported_on="LLaVA-NeXT 8B").splitlines()[0]
    assert on.endswith("| relative score | paper, reported (LLaVA-NeXT 8B) |")


def test_sweep_table_shows_exact_match_and_the_chance_row():
    from topovlm.studies.sweep import SweepRow, sweep_table

    full = SweepRow(
        0.0, "full model", -1, (), {"a": 0.8, "b": 1.0, "all": 0.9}, 1.0, 0.0, {"a": 0.7, "b": 0.9, "all": 0.8}
    )
    rows = [
        SweepRow(
            0.5,
            "random",
            s,
            (s,),
            {"a": 0.4, "b": 0.5, "all": 0.45},
            0.5,
            0.0,
            {"a": 0.0, "b": 0.1 * s, "all": 0.05 * s},
        )
        for s in range(2)
    ]
    table = sweep_table(full, rows, chance={"a": 0.4, "b": 0.5, "all": 0.45})
    assert table.splitlines()[0].endswith("| relative score | exact match, all |")
    assert "| - | full model | - | 80.0 | 100.0 | 90.0 | 1.000 | 80.0 |" in table
    assert "| - | chance (uniform guess) | - | 40.0 | 50.0 | 45.0 | 0.500 | - |" in table
    assert "| 50% | random (mean of 2) |  | 40.0 | 50.0 | 45.0 | 0.500 | 2.5 |" in table


@pytest.mark.parametrize("task", ["easy-vqa", "av"])
def test_every_answer_is_one_of_its_questions_choices(task):
    qas = tasks.load(task, split="test", n=300 if task == "easy-vqa" else 40)
    assert all(q.choices and q.answer in q.choices for q in qas)
    assert all(q.options == q.choices for q in qas if q.options)  # multiple choice: the letters


def test_chance_is_the_mean_of_one_over_the_number_of_choices():
    from topovlm.evaluate import chance

    qas = [
        QA(Sample("q"), "yes", "yes/no", choices=("yes", "no")),
        QA(Sample("q"), "red", "color", choices=("red", "blue", "green", "gray")),
    ]
    assert chance(qas) == {"yes/no": 0.5, "color": 0.25, "all": 0.375}
    with pytest.raises(TopoVLMInputError, match="choices"):
        chance([QA(Sample("q"), "yes", "yes/no")])


def test_unknown_scoring_is_a_clear_error():
    from topovlm.evaluate import accuracy

    with pytest.raises(TopoVLMInputError, match="unknown scoring 'logprob'"):
        accuracy(None, [QA(Sample("q"), "yes", "yes/no", choices=("yes", "no"))], scoring="logprob")


def test_accuracy_plots_draw_every_bar_and_the_chance_level():
    import matplotlib

    matplotlib.use("Agg")
    from topovlm.studies import sweep
    from topovlm.studies.sweep import SweepRow

    full = SweepRow(0.0, "full model", -1, (), {"a": 0.8, "b": 1.0, "all": 0.9}, 1.0, 0.0)
    rows = [
        SweepRow(s, m, 0, (1,), {"a": 0.5, "b": 0.6, "all": 0.55}, 0.6 - s / 2, 0.0)
        for s in (0.25, 0.5)
        for m in ("topovlm", "shortgpt")
    ]
    ax = sweep.plot_suite_accuracy(full, rows, 0.5, chance={"a": 0.25, "b": 0.5, "all": 0.4})
    assert len(ax.patches) == 2 * 3  # 2 suites x (full + 2 methods)
    levels = sorted(float(x) for c in ax.collections for seg in c.get_segments() for x in {seg[0][0]})
    assert levels == [25.0] * 3 + [50.0] * 3
    assert sorted(round(b.get_width()) for b in ax.patches) == [50, 50, 60, 60, 80, 100]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["full model", "topovlm", "shortgpt"]
    ax = sweep.plot_sparsity_sweep(rows, chance=0.3)
    assert [line.get_label() for line in ax.get_lines()][:3] == ["chance", "topovlm", "shortgpt"]
