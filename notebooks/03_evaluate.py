# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: cvitkit (venv)
#     language: python
#     name: cvitkit
# ---

# %% [markdown]
# # 03 · Evaluation: accuracy matrices, forgetting and metrics
#
# Every run writes its accuracy matrix $R$ (rows: after which stage; columns: which task) and the
# per-sample predictions it was computed from. This notebook reads the runs of one suite and shows
# what a continual-learning paper reports: the matrix as a heatmap, each task's score over time
# (forgetting curves), and the summary metrics, with the number of unparsable answers beside them.
#
# Metric definitions (`cvitkit/eval/metrics.py`), with $T$ tasks:
#
# * $\mathrm{MFN}=\mathrm{ACC}=\frac1T\sum_i R_{T,i}$ — accuracy at the end;
# * $\mathrm{MAA}=\frac1T\sum_t \frac1t\sum_{i\le t} R_{t,i}$ — accuracy averaged along the sequence;
# * $\mathrm{MFT}=\frac1T\sum_i R_{i,i}$ — accuracy right after learning each task (plasticity);
# * $\mathrm{BWT}=\frac1{T-1}\sum_{i<T}(R_{T,i}-R_{i,i})$ — negative = forgetting;
# * streams: $\mathrm{AP}_t$ = mean score over the fixed task set after chunk $t$,
#   $\mathrm{MAP}=\frac1N\sum_t \mathrm{AP}_t$, $\mathrm{MAF}$ = mean drop from each task's best earlier score.

# %% tags=["parameters"]
profile = "smoke"      # smoke | mini | full
suite = "mllmcl_dcl"   # which suite's runs to show
results_dir = ""       # empty means results/<profile>
data_root = ""         # full profile: root of the real benchmark files (for the chance levels)

# %% [markdown]
# ## The runs of the suite
# Runs are folders `results/<profile>/runs/<suite>/<run id>/` (stream suites: `<suite>_<N>chunks`).

# %%
import pandas as pd

from cvitkit.report.plots import forgetting_figure, learnability_figure, matrix_figure, save_figure
from cvitkit.report.render import write_frame
from cvitkit.report.results import RunStore, resolve_results_dir

root = resolve_results_dir(profile, results_dir)
store = RunStore(root)
run_ids = [r for r in store.available() if r.split("/")[0] == suite or r.split("/")[0].startswith(f"{suite}_")]
print(f"{len(run_ids)} run(s) of {suite} in {root}:", ", ".join(run_ids) or "none yet (run notebook 02 first)")

# %% [markdown]
# ## Metrics
# One row per run. Task-incremental suites: MFN, MAA, MFT, BWT (and forgetting); streams: MAP and
# MAF. "parse failures" counts answers the task's scorer could not read (they count as wrong).

# %%
rows = []
for run_id in run_ids:
    run = store[run_id]
    m = run.metrics
    failures = sum(n for stage in run.summary.get("parse_failures", {}).values() for n in stage.values())
    rows.append({"run": run_id, **{k: m[k] for k in ("MFN", "MAA", "MFT", "BWT", "Forgetting", "MAP", "MAF") if k in m},
                 "parse failures": failures,
                 "adapter params": run.summary.get("adapter_parameters", {}).get("adapter_total"),
                 "ms / step": round(1000 * (run.summary.get("step_seconds_median") or 0), 1)})
metrics = pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()
tables = root / "tables"
tables.mkdir(parents=True, exist_ok=True)
figures = root / "figures" / suite
if not metrics.empty:
    write_frame(metrics.round(2), tables, f"{suite}_metrics")
metrics.round(2)

# %% [markdown]
# ## Seed spread
# Runs repeated with other training seeds (`<run>__seed<N>`, the `seed` variants of
# `configs/methods/`) show how much of a gap between two methods one seed's luck could make: per
# repeated run, the number of seeds and the mean, standard deviation and range of each metric. Where
# two methods' ranges overlap, these seeds do not tell them apart.

# %%
from cvitkit.report.plots import seed_figure
from cvitkit.report.seeds import seed_spread

spread = seed_spread(metrics) if not metrics.empty else pd.DataFrame()
if spread.empty:
    print(f"no run of {suite} is repeated with another seed.")
else:
    write_frame(spread.round(2), tables, f"{suite}_seeds")
    fig = seed_figure(metrics, f"{suite}: each seed of the repeated runs (bar: mean)")
    save_figure(fig, figures / "seeds.png", stamp=f"cvitkit {profile} {suite} seeds")
spread.round(2)

# %% [markdown]
# ## Answer form: instruction following kept or lost
# A score mixes two things a model can forget: what it sees and how it should answer. Each saved answer
# is sorted into a coarse form (a letter, a number, coordinates, one to three words, a sentence;
# `cvitkit/eval/forms.py`), and a task's *form share* is the share of its test answers given in the
# form of their reference. Per run: the share of every task after the last stage, and the means
# $F_{own}$ (right after each task's own stage), $F_{end}$ (after the last stage) and
# $F_{drop} = F_{own} - F_{end}$. A large drop is forgetting of the instruction (captions given to
# letter questions); with the form kept, a falling score is forgetting of the content. Form says nothing
# about correctness: "B" to every letter question keeps the form.

# %%
from cvitkit.report.answer_forms import form_table
from cvitkit.report.plots import answer_form_figure

forms = form_table({r: store[r].matrix for r in run_ids}, {r: store[r].answers for r in run_ids})
if forms.empty:
    print("no run of this suite has answer profiles with form shares (re-export its summary).")
else:
    write_frame(forms.round(1), tables, f"{suite}_answer_forms")
    fig = answer_form_figure(forms, f"{suite}: answers in the asked-for form after the last stage")
    save_figure(fig, figures / "answer_forms.png", stamp=f"cvitkit {profile} {suite} answer forms")
forms.round(1)

# %% [markdown]
# ## Is each task learned at all?
# Forgetting only means something for a task that was learned first. Chance here is the
# **majority-answer baseline**: every test question answered with the most frequent training answer,
# scored by the task's own scorer (a VizWiz-like task that is 34 % "unanswerable" has chance 34, not
# 1/#answers). Stronger references follow. A model that collapses to one answer can beat chance by
# luck of the test sample: the **best constant answer** is the highest score any one training answer
# gets when given to every test question. A model that reads the question but not the image can beat
# every constant (a task mixing yes/no and multiple-choice questions rewards "yes" to one kind and "A"
# to the other): the **question prior** answers each test question with the most frequent training
# answer to the same question text. Questions written from templates rarely repeat word for word, so
# the **question-type prior** does the same per question *type*, the question with its answer words
# masked (`is the _ above or below the _` gets "below" if most such training questions did). The
# *bar* is the highest of the three, and a task counts as learned
# when LoRA-FT's score right after training on it, $R_{t,t}$, is at least 10 points above it (two
# standard errors at 100 test samples): only a model that reads the image gets there.
# Where the suite also has the run `lora_ft__e3` (the same sequence with three epochs per task), two
# more columns say which tasks three times the steps would lift over that bar. The *answers* columns
# say how varied LoRA-FT's answers were right after training on the task: the number of distinct
# answers to its test questions, then the most frequent one and its share. `1 · "b" 100%` is a model
# that answers "B" to everything: a collapse onto the answer prior, not learning.
# Streams mix tasks in every chunk, so they have no per-task fine-tune score and are skipped.

# %%
from cvitkit.data import load_profile_suite_data, load_suite
from cvitkit.errors import CvitkitError
from cvitkit.profiles import load_profile
from cvitkit.report.learnability import LEARNED_MARGIN, learnability_table

spec = load_suite(suite)
learnability = pd.DataFrame()
if spec.protocol != "task_incremental":
    print(f"{suite} is a stream: no per-task fine-tune score.")
else:
    try:
        data = load_profile_suite_data(load_profile(profile, data_root=data_root), spec)
    except (CvitkitError, FileNotFoundError) as exc:
        print(f"no records to compute chance levels from ({exc}); run notebook 01 first.")
    else:
        learnability = learnability_table(spec, data.train, data.test, {r: store[r].matrix for r in run_ids},
                                          answers={r: store[r].answers for r in run_ids})
        write_frame(learnability, tables, f"{suite}_learnability")
        learned = int((learnability["learned"] == "yes").sum())
        print(f"{learned} of {len(learnability)} tasks learned (LoRA-FT R_tt >= bar + {LEARNED_MARGIN:g})")
        if "learned at 3 epochs" in learnability:
            print(f"{int((learnability['learned at 3 epochs'] == 'yes').sum())} of {len(learnability)} "
                  "learned with three epochs per task (run lora_ft__e3)")
learnability

# %% [markdown]
# **What it takes.** The probe tables (`python -m cvitkit.probe`, run by hand: they are not part of the
# pipeline) train each task alone with more steps, more data, a larger model, a vision tower pretrained
# to keep where things are or what they are, or replies that write what they read before the answer
# (the scene, the working, the option's value). This table gathers, per task, every setting measured so far, in sequence
# and alone, and names those that cleared the bar (`results/mini/LEARNABILITY.md` tells the whole story).
# A probe repeated with blank images (`--blind`) is the question-only model of its setting: the setting
# must clear that score too, and so must the sequence with the same epochs per task. So a task counted
# as learned in the table above can be unlearned here.

# %%
from cvitkit.report.what_it_takes import write_what_it_takes

what_it_takes = pd.DataFrame()
if not learnability.empty:
    what_it_takes = write_what_it_takes(tables, suite, default_samples=len(next(iter(data.train.values()))),
                                        sequence_model=load_profile(profile).model.preset)
what_it_takes

# %% [markdown]
# The same table as a picture: each bar is a fine-tune score minus the task's bar (the best constant or
# a question prior, whichever is highest), so every task has the same line to clear, dashed, 10 points
# up. A bar at or below zero is a model that does no better than an answer or a question prior (or
# worse: malformed boxes and points score 0).

# %%
fig = learnability_figure(learnability, f"{suite}: fine-tune score above the bar", LEARNED_MARGIN)
if fig is not None:
    path = figures / "learnability.png"
    save_figure(fig, path, stamp=f"cvitkit {profile} {suite} learnability")
    print("wrote", path)

# %% [markdown]
# ## Accuracy matrices as heatmaps
# Read a row left to right: the model after that stage. Read a column top to bottom: what happened
# to that task as later tasks were learned — a colour that fades down the column is forgetting.

# %%
for run_id in run_ids:
    fig = matrix_figure(store[run_id], f"{run_id}: accuracy matrix")
    if fig is not None:
        save_figure(fig, figures / f"{run_id.split('/', 1)[1]}_matrix.png", stamp=f"cvitkit {profile} {run_id}")
        print("wrote", figures / f"{run_id.split('/', 1)[1]}_matrix.png")

# %% [markdown]
# ## Forgetting curves
# Each line is one task's score after every stage. A method that does not forget keeps its lines
# flat after the task's own stage; sequential fine-tuning shows lines falling as soon as the next
# task arrives.

# %%
for run_id in run_ids:
    fig = forgetting_figure(store[run_id], f"{run_id}: score of each task over the sequence")
    if fig is not None:
        save_figure(fig, figures / f"{run_id.split('/', 1)[1]}_forgetting.png", stamp=f"cvitkit {profile} {run_id}")

# %% [markdown]
# ## Where to look next
# Per-sample predictions (question, output, reference, score, routing metadata) are in the run's work
# folder, `runs/<profile>/runs/<suite>/<run id>/stages/NNN/predictions/<task>.jsonl`; every score
# above can be recomputed from them with `cvitkit.eval.score`.
