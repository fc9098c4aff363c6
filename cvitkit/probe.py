"""Single-task learnability probe: can the model learn this task alone, and in how many epochs?

The learnability table of ``03_evaluate`` says which tasks LoRA-FT fails to lift above chance inside a
continual run. This probe separates *cannot learn* from *had too few steps*: for each task it starts
from the profile's base model, trains one fresh adapter of ``method`` (LoRA-FT by default, the
method's profile preset otherwise unchanged) on that task alone for each number of epochs asked
for, and scores it on the task's test set next to the references of :mod:`cvitkit.eval.chance`:
chance, the best constant answer and the two question priors (by question text and by question type).

Knobs answer *what would it take*: more steps (``--epochs``), a larger model (``--preset``), more
training data (``--train-per-task``: a larger synthetic training set of the same generator, built in
its own folder; the test set is unchanged, samples being drawn per index), a base model whose
frozen vision tower keeps where each patch is (``--vision-position-weight``, see
:mod:`cvitkit.vision_pretrain`; its own base model, pretrained once) or trained its tower longer
(``--vision-epochs``), a base model whose language model captioned every domain's pictures before
continual tuning (``--caption-every-domain``) and, for multiple-choice tasks,
replies that name the option's value before its letter (``--answer-form value_letter``, see
:mod:`cvitkit.data.option_answers`: ``circle B`` instead of ``B``, scored on the letter the
``option_letter`` rule parses from the reply) and, for math, chart-trend and grounding tasks, worked
replies that write what they read before the answer (``--answer-form worked``, see
:mod:`cvitkit.data.worked_answers`: ``3+4=7``, ``down up no``, ``top left [0.1, 0.1, 0.3, 0.3]``; only
the final answer is scored, by the task's own scorer), and, for grounding, GUI, VQA and relation tasks,
scene-first replies that list every object with its cell before looking up the ones asked about
(``--answer-form scene``, see :mod:`cvitkit.data.scene_answers` and
:mod:`cvitkit.data.scene_questions`). All three add two
columns that tell the reading step from the last one: *reading right* and *answer follows its reading*.
``--image-size`` draws the pictures larger (objects over more of the tower's patches; its own data and
base model, pretrained once at that side). ``--train-tower`` trains the vision tower in full with the task, which every method (and LLaVA-style
continual tuning) keeps frozen: whether a tower shaped by the task reads what the frozen one drops;
``--train-head`` the language model's output head, whose rows for words the base model never had to write
(a benchmark's kinds and labels) pretraining left undistinguished.
``--seed`` repeats a probe with another training seed (the adapter's initialisation and the order of the
training batches; the base model and the data are unchanged), so that a result at the margin can be
told from a lucky draw; the *what it takes* table averages a setting over its seeds. ``--blind`` trains
and tests the same setting with every picture replaced by one grey image: the question-only model of
that very setting (same data, steps, replies), the reference a score that reads the image must clear.

Each (task, epochs) probe is an ordinary resumable run folder under
``<work>/<profile>/probes/<suite>/<preset>[__position<w>][__object<w>][__stage0e<n>][__captions][__<side>px][__tower][__head]/<task>__<method>__e<epochs>[__n<samples>][__<answer form>][__seed<s>][__blind]``
(predictions included), so an interrupted probe continues where it stopped and a finished one is read back instead
of retrained. The table goes to ``results/<profile>/tables/<suite>_probe.{csv,md}``, each probe's score per
question type (colour, kind, side, ...: which questions the pictures help with, next to its blind probe's)
to ``<suite>_probe_types.{csv,md}``, where the box or click of each grounding and GUI reply lands (the named
object, another one, none; :mod:`cvitkit.eval.targets`) to ``<suite>_probe_targets.{csv,md}``, and the suite's
*what it takes* table (:mod:`cvitkit.report.what_it_takes`: every setting tried per task, in sequence
and alone, and which ones learned it) is rewritten beside it when the learnability table exists::

    python -m cvitkit.probe --profile mini --suite coin --tasks ImageNet Grounding --epochs 1 3
    python -m cvitkit.probe --profile mini --suite coin --tasks Grounding --epochs 3 --preset tiny-20m
    python -m cvitkit.probe --profile mini --suite coin --tasks Grounding --train-per-task 4000
    python -m cvitkit.probe --profile mini --suite coin --tasks Grounding --epochs 3 --vision-position-weight 1
    python -m cvitkit.probe --profile mini --suite coin --tasks ScienceQA --epochs 3 --answer-form value_letter
    python -m cvitkit.probe --profile mini --suite mllmcl_dcl --tasks Fin --epochs 30 --answer-form worked
    python -m cvitkit.probe --profile mini --suite mllmcl_dcl --tasks Fin --epochs 30 --answer-form worked --seed 1
    python -m cvitkit.probe --profile mini --suite mllmcl_dcl --tasks AD --epochs 10 --blind
    python -m cvitkit.probe --profile mini --suite mllmcl_dcl --tasks AD Med --epochs 10 --train-tower
    python -m cvitkit.probe --profile mini --suite mllmcl_dcl --tasks AD Med --epochs 10 --train-head
    python -m cvitkit.probe --profile mini --suite mllmcl_dcl --tasks AD Med --epochs 10 --image-size 128
    python -m cvitkit.probe --profile mini --suite mllmcl_dcl --tasks AD Med --epochs 10 --caption-every-domain
    python -m cvitkit.probe --profile mini --suite mllmcl_dcl --tasks AD Med --epochs 10 --vision-object-weight 1 --vision-epochs 20
    python -m cvitkit.probe --profile mini --suite mllmcl_dcl --refresh-references
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

import pandas as pd

from cvitkit.data.option_answers import AGREEMENT_COLUMNS, value_first, value_letter_agreement
from cvitkit.data.scene_answers import SCENE_FAMILIES, scene_agreement, scene_reply
from cvitkit.data.worked_answers import WORKED_FAMILIES, check_worked, worked_agreement, worked_records
from cvitkit.errors import ConfigError, CvitkitError
from cvitkit.eval.parsed_scorers import final_part
from cvitkit.eval.question_types import question_type, scores_by_type
from cvitkit.eval.targets import TARGET_COLUMNS, TARGET_FAMILIES, target_hits
from cvitkit.profiles import Profile, available_profiles, load_profile
from cvitkit.provenance import append_call, provenance, work_dir

#: The one picture every record of a blind probe shows: mid-grey, so no pixel tells one question from another.
BLANK_GREY = (128, 128, 128)

#: Forms of the training replies: the task's own, value-first (multiple choice), worked (math, chart trend,
#: grounding), scene-first (grounding, GUI, VQA, relation).
ANSWER_FORMS = ("letter", "value_letter", "worked", "scene")


#: Stage-0 terms of the base model's vision tower a probe can switch on: the config field, and the name
#: the tables and folders give it (see :mod:`cvitkit.vision_pretrain`).
TOWER_TERMS = {"position": "vision_position_weight", "object": "vision_object_weight"}


def _tower_terms(profile: Profile) -> list[tuple[str, float]]:
    return [(term, getattr(profile.base, field)) for term, field in TOWER_TERMS.items()
            if getattr(profile.base, field)]


def _stage0_epochs() -> float:
    """Stage 0's passes over its images by default; rows and folders of base models trained otherwise
    (``--vision-epochs``) say so."""
    from cvitkit.train_config import BaseModelConfig

    return BaseModelConfig().vision_epochs


def _base_tags(profile: Profile) -> list[tuple[str, str]]:
    """``(row label, folder)`` parts of each way the probed base model differs from the kit's default one: its
    stage-0 terms and epochs, and the LLaVA stage's captions of every domain (:func:`with_domain_captions`)."""
    tags = [(f" + {term} term {w:g}", f"__{term}{w:g}") for term, w in _tower_terms(profile)]
    epochs = profile.base.vision_epochs
    if epochs != _stage0_epochs():
        tags.append((f" + stage 0 {epochs:g} epochs", f"__stage0e{epochs:g}"))
    if profile.base.caption_every_domain:
        tags.append((" + domain captions", "__captions"))
    return tags


#: Parts of the base model a probe can train in full with the task (``--train-tower``, ``--train-head``):
#: the module's name, and the name the tables, folders and run configs give it.
TRAINED_PARTS = {"tower": "vision_tower", "head": "lm_head"}


def _check_parts(train_parts) -> tuple[str, ...]:
    unknown = sorted(set(train_parts) - set(TRAINED_PARTS))
    if unknown:
        raise ConfigError(f"unknown part(s) {unknown} to train; expected some of {list(TRAINED_PARTS)}.")
    return tuple(part for part in TRAINED_PARTS if part in train_parts)


def model_label(profile: Profile, train_parts=(), image_size: int | None = None) -> str:
    """The probed model as the tables name it: the preset, the base model's stage-0 terms when set
    (``tiny-3m + position term 1``, ``tiny-3m + object term 1``) and epochs other than the default
    (``+ stage 0 20 epochs``), ``+ domain captions`` for a base model whose LLaVA stage captioned every domain (:func:`with_domain_captions`), and ``image_size``, an image side other
    than the profile's (``tiny-3m + 128 px``, see :func:`with_image_size`), each a base model of its own,
    and ``+ tower trained``, ``+ head trained`` for the parts the probe trains with the task."""
    return (profile.model.preset + "".join(label for label, _ in _base_tags(profile))
            + (f" + {image_size} px" if image_size else "")
            + "".join(f" + {part} trained" for part in _check_parts(train_parts)))


def check_pretrains_stage0(profile: Profile, what: str) -> None:
    """Refuse ``what`` (an option that changes or reads the kit's own base model) on a profile that does not
    pretrain a base model with a stage 0 (``model.source: base`` and a ``base.vision_suite``)."""
    if profile.model.source != "base" or not profile.base.vision_suite:
        raise ConfigError(f"{what} works on the base model the kit pretrains (stage 0, then the LLaVA stage), but "
                          f"profile {profile.name!r} does not pretrain a base model with a stage 0 (model.source "
                          f"{profile.model.source!r}, base.vision_suite {profile.base.vision_suite!r}). Fix: use the "
                          "mini profile.")


def with_tower_term(profile: Profile, term: str, weight: float) -> Profile:
    """``profile`` whose base model's stage 0 weighs ``term`` (``position`` or ``object``) by ``weight``."""
    if weight < 0:
        raise ConfigError(f"the {term} term's weight must be 0 or more, got {weight}.")
    if weight:
        check_pretrains_stage0(profile, f"the {term} term of stage 0")
    # a float, as the CLI passes it: the base model's cache key hashes the number as written (1 and 1.0 differ)
    return replace(profile, base=replace(profile.base, **{TOWER_TERMS[term]: float(weight)}))


def with_vision_epochs(profile: Profile, epochs: float) -> Profile:
    """``profile`` whose base model's stage 0 makes ``epochs`` passes over its captioned images."""
    if epochs <= 0:
        raise ConfigError(f"--vision-epochs must be a positive number of passes, got {epochs:g}.")
    check_pretrains_stage0(profile, "--vision-epochs")
    return replace(profile, base=replace(profile.base, vision_epochs=float(epochs)))


def with_domain_captions(profile: Profile) -> Profile:
    """``profile`` whose base model's LLaVA stage also captions stage 0's images of every domain.

    The profile's base model learns to answer on the toy domain alone, so the language model has never
    written a benchmark domain's kinds (``cell``, ``cyst``, ``bus``) when continual tuning starts, and its
    output-head rows for them are still their initialisation. This base model has: it plays a pretrained
    MLLM whose caption data covered the benchmarks' kind of pictures (its own cache key; the tower, trained
    in stage 0, is the same). The benchmarks' questions stay new to it."""
    check_pretrains_stage0(profile, "--caption-every-domain")
    return replace(profile, base=replace(profile.base, caption_every_domain=True))


def with_image_size(profile: Profile, size: int) -> Profile:
    """``profile`` whose pictures (data and base model) are ``size`` pixels a side instead of its own.

    The synthetic objects are drawn in proportion to the picture, so a larger side gives each object
    more patches of the tower (at 64 px an object is about two 8-pixel patches wide). The base model is
    pretrained again at that size (its cache key holds the image side), and the probe's data are built in
    a folder of their own; the pictures differ from the 64-pixel ones, and so do their samples."""
    from cvitkit.models.tiny import resolve_tiny_config

    if profile.model.source != "base":
        raise ConfigError(f"--image-size pretrains the kit's tiny LLaVA at another input side; profile "
                          f"{profile.name!r} does not pretrain one (model.source {profile.model.source!r}: a fresh "
                          f"preset or a model folder, whose processor fixes its own side and would shrink the "
                          f"pictures back). Fix: use the mini profile.")
    if profile.data_root:
        raise ConfigError("--image-size draws the synthetic pictures at another size; it cannot be used with "
                          "--data-root.")
    patch = resolve_tiny_config(profile.model.preset).patch_size
    if size < patch or size % patch:
        raise ConfigError(f"--image-size {size}: the side must be a multiple of the {profile.model.preset} "
                          f"tower's {patch}-pixel patch (e.g. 96 or 128).")
    return replace(profile, data=replace(profile.data, image_size=size))


def own_image_size(profile: Profile, size: int | None) -> tuple[Profile, int | None]:
    """``(profile, size)`` with the profile's pictures ``size`` pixels a side (:func:`with_image_size`), or
    ``(profile, None)`` when ``size`` is None or the profile's own: the side a probe names in its folder
    and row."""
    if size is None or size == profile.data.image_size:
        return profile, None
    return with_image_size(profile, size), size


def add_tower_options(parser) -> None:
    """``--vision-position-weight`` and ``--vision-object-weight``: a base model whose stage 0 adds that
    term, ``--vision-epochs``: one whose stage 0 trains longer (see :func:`with_tower_options`), and
    ``--image-size``: pictures and a base model of another side (see :func:`own_image_size`)."""
    for term, learned in (("position", "each patch's row and column"),
                          ("object", "the kind of the object under each patch")):
        parser.add_argument(f"--vision-{term}-weight", type=float,
                            help=f"base model whose frozen vision tower also learned {learned} with this weight "
                                 "(stage 0, cvitkit/vision_pretrain.py); pretrained first, once")
    parser.add_argument("--vision-epochs", type=float,
                        help=f"passes of stage 0 over its captioned images (default {_stage0_epochs():g}): a tower "
                             "trained longer, its own base model, pretrained first, once")
    parser.add_argument("--image-size", type=int,
                        help="pictures of this many pixels a side instead of the profile's (a multiple of the "
                             "tower's patch): objects span more patches; its own data and base model, built first")


def with_tower_options(profile: Profile, args) -> Profile:
    """``profile`` with the stage-0 terms and epochs the options of :func:`add_tower_options` set, and the domain
    captions of ``--caption-every-domain`` where the parser has it (the image side is
    :func:`own_image_size`'s)."""
    for term in TOWER_TERMS:
        weight = getattr(args, f"vision_{term}_weight", None)
        if weight is not None:
            profile = with_tower_term(profile, term, weight)
    if getattr(args, "vision_epochs", None) is not None:
        profile = with_vision_epochs(profile, args.vision_epochs)
    if getattr(args, "caption_every_domain", False):
        profile = with_domain_captions(profile)
    return profile


def with_position_term(profile: Profile, weight: float) -> Profile:
    """``profile`` whose base model's stage 0 weighs the patch-position term by ``weight``."""
    return with_tower_term(profile, "position", weight)


def _probe_dir(profile: Profile, suite: str, task: str, method: str, epochs: float, train_per_task: int | None,
               answer_form: str = "letter", seed: int | None = None, blind: bool = False,
               train_parts=(), image_size: int | None = None):
    """The probe's run folder; ``seed`` is a training seed other than the profile's (its own folder), and a
    blind probe has its own too; another image side and trained parts are models of their own
    (``<preset>__128px``, ``<preset>__tower``, ``<preset>__head``)."""
    name = f"{task}__{method}__e{epochs:g}" + (f"__n{train_per_task}" if train_per_task else "")
    name += "" if answer_form == "letter" else f"__{answer_form}"
    name += "" if seed is None else f"__seed{seed}"
    name += "__blind" if blind else ""
    model = profile.model.preset + "".join(folder for _, folder in _base_tags(profile))
    model += (f"__{image_size}px" if image_size else "") + "".join(f"__{part}" for part in _check_parts(train_parts))
    return work_dir(profile.name) / "probes" / suite / model / name


def _probe_data(profile: Profile, spec, train_per_task: int | None, image_size: int | None = None):
    """The suite's data; with ``train_per_task`` (a larger set) or ``image_size`` (pictures of another side,
    already ``profile``'s: :func:`own_image_size`), a synthetic build in a folder of its own
    (``probes/data[_n<samples>][_<side>px]``)."""
    from cvitkit.data import load_profile_suite_data, load_suite_data
    from cvitkit.data.build import build_suite

    if not train_per_task and not image_size:
        return load_profile_suite_data(profile, spec, build=True)
    if profile.data_root:
        raise ConfigError("--train-per-task and --image-size redraw the synthetic data; they cannot be used with "
                          "--data-root.")
    root = work_dir(profile.name) / "probes" / ("data" + (f"_n{train_per_task}" if train_per_task else "")
                                                + (f"_{image_size}px" if image_size else ""))
    data = profile.data if not train_per_task else replace(profile.data, train_per_task=train_per_task)
    build_suite(spec, data, root)
    return load_suite_data(spec, root=root)


def _blind(profile: Profile, suite_data, task: str):
    """``suite_data`` whose ``task`` records (training and test) all show one grey picture of the profile's
    image size, by absolute path; the other tasks' records are left as they are."""
    from PIL import Image

    size = profile.data.image_size
    blank = work_dir(profile.name) / "probes" / "blank" / f"grey_{size}px.png"
    if not blank.is_file():
        blank.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (size, size), BLANK_GREY).save(blank)

    def shown_blank(records):
        return [{**r, "image": str(blank.resolve())} for r in records]

    return replace(suite_data, train={**suite_data.train, task: shown_blank(suite_data.train[task])},
                   test={**suite_data.test, task: shown_blank(suite_data.test[task])})


def probe_task(profile: Profile, suite_data, task: str, epochs: float, method: str = "lora_ft",
               log=print, train_per_task: int | None = None, answer_form: str = "letter",
               seed: int | None = None, blind: bool = False, train_parts=(),
               image_size: int | None = None) -> dict:
    """Train ``method`` on ``task`` alone for ``epochs`` from the base model; its test score and cost.

    ``seed`` replaces the profile's training seed (``train.seed``: the adapter's initialisation and the
    batches' order), in a run folder of its own; the base model and the data do not depend on it.
    ``blind`` shows every training and test record of the task one grey picture (:func:`_blind`).
    ``train_parts`` (``tower``, ``head``) trains the vision tower or the output head in full with the adapter
    (at the projector's learning rate; :func:`~cvitkit.adapters.set_part_trainable`), where every method
    keeps them frozen.
    ``image_size`` names the side ``profile`` was given by :func:`own_image_size` (its folder's name).

    With ``answer_form="value_letter"`` the training replies name the option's value before its letter,
    the reply's letter is scored (``option_letter``), and the result adds the two parts of
    :func:`~cvitkit.data.option_answers.value_letter_agreement`. With ``"worked"`` they write what the
    picture shows before the answer, the answer is scored by the task's own scorer (``final_answer``), and
    the result adds :func:`~cvitkit.data.worked_answers.worked_agreement`. With ``"scene"`` (grounding, GUI,
    VQA, relation) they list the scene before the answer, which is scored likewise, and the result adds
    :func:`~cvitkit.data.scene_answers.scene_agreement`."""
    from cvitkit.data import corpus
    from cvitkit.eval.chance import training_answers
    from cvitkit.eval.evaluate import default_max_new_tokens
    from cvitkit.methods.base import build_method
    from cvitkit.runner import (SETUP_SEED_INDEX, _start_or_resume, base_model_dir, experiences_for, load_base,
                                method_preset, record_base_model, run_config)
    from cvitkit.train import ContinualTrainer, experience_seed, seed_everything

    suite = suite_data.suite
    spec = drawn_spec = {t.name: t for t in suite.tasks}[task]
    if seed == profile.train.seed:
        seed = None  # the profile's own seed: the folder of a probe made without one
    if seed is not None:
        profile = replace(profile, train=replace(profile.train, seed=seed))
    test_samples = None
    if answer_form == "value_letter":
        suite_data, spec = _value_first(suite_data, spec)
    elif answer_form in ("worked", "scene"):
        suite_data, spec, test_samples = _worked(profile, suite_data, spec, answer_form)
    if blind:
        suite_data = _blind(profile, suite_data, task)
    model, processor = load_base(profile, corpus=corpus())
    if answer_form != "letter":
        # the default budget is sized for the test references (the longest + 4); the steps come first
        tokens = max(profile.train.max_new_tokens, STEPS_FIRST_TOKENS,
                     default_max_new_tokens(processor.tokenizer, training_answers(suite_data.train[task])))
        profile = replace(profile, train=replace(profile.train, max_new_tokens=tokens))
    method_obj = build_method(method, method_preset(profile), {"epochs": epochs}, suite=suite,
                              seed=profile.train.seed)
    run_dir = _probe_dir(profile, suite.name, task, method, epochs, train_per_task, answer_form, seed, blind,
                         train_parts, image_size)
    if train_per_task:
        profile = replace(profile, data=replace(profile.data, train_per_task=train_per_task))
    # letter probes keep their config (and so their saved folders); other forms say so in theirs
    form = {} if answer_form == "letter" else {"answer_form": answer_form}
    form.update({"blind": True} if blind else {})
    form.update({f"train_{part}": True for part in _check_parts(train_parts)})
    _start_or_resume(run_dir, run_config(profile, suite, method_obj, task=task, **form), False, log)
    base_dir = base_model_dir(profile)
    pretrainings = record_base_model(run_dir, base_dir, log) if base_dir is not None else []
    seed_everything(experience_seed(profile.train.seed, SETUP_SEED_INDEX))
    method_obj.setup(model, processor)
    from cvitkit.adapters import set_part_trainable

    for part in _check_parts(train_parts):
        set_part_trainable(method_obj.model, TRAINED_PARTS[part], True)
    experience = next(e for e in experiences_for(suite_data, None, False) if e.task_name == task)
    experience = replace(experience, index=0, is_first=True, is_last=True)
    trainer = ContinualTrainer(method_obj, processor, {task: spec}, {task: suite_data.test[task]},
                               suite_data.image_root, run_dir, profile.train, protocol=suite.protocol, log=log)
    stage = trainer.run([experience])[-1]
    result = {"score": stage.scores[task]["score"], "steps": stage.log.get("optimizer_steps"),
              "train_seconds": round(stage.log.get("train_seconds", float("nan")), 1),
              "base_model": pretrainings, "types": {}}
    predictions_file = trainer.stage_dir(0) / "predictions" / f"{task}.jsonl"
    predictions = [json.loads(line) for line in predictions_file.read_text().splitlines() if line.strip()]
    if answer_form != "letter":
        result.update(_agreement(predictions, suite_data.test[task], test_samples, answer_form))
    if test_samples is None and not profile.data_root:
        test_samples = _drawn_samples(profile, suite.name, drawn_spec, suite_data.test[task], "question_id")
    if test_samples is not None:
        result["types"] = scores_by_type(predictions, {q: question_type(s.truth) for q, s in test_samples.items()})
        if drawn_spec.family in TARGET_FAMILIES:
            after = spec.scorer_params.get("after") if spec.scorer == "final_answer" else None
            answers = [row["text"] if after is None else final_part(row["text"], after) for row in predictions]
            result["targets"] = target_hits(answers, [test_samples[row["question_id"]] for row in predictions])
    return result


#: Least generation budget of value-first and worked replies (``circle B``, ``down up no``, ``3+4=12``);
#: longer ones (a grounding reply's box) get their longest training reply + 4.
STEPS_FIRST_TOKENS = 12


def _value_first(suite_data, spec):
    """``suite_data`` with ``spec``'s training replies rewritten value-first, and ``spec`` scored on the
    reply's letter."""
    train = {**suite_data.train, spec.name: [value_first(r) for r in suite_data.train[spec.name]]}
    return replace(suite_data, train=train), replace(spec, scorer="option_letter", scorer_params={})


def _worked(profile: Profile, suite_data, spec, form: str = "worked"):
    """``suite_data`` with ``spec``'s training replies worked (or scene-first: ``form="scene"``), ``spec``
    scored on the final answer, and the test samples drawn again from their seeds (for the reading
    columns), by question id."""
    if form == "worked":
        check_worked(spec)
    elif spec.family not in SCENE_FAMILIES:
        raise ConfigError(f"task {spec.name} ({spec.family}) has no scene-first reply: it lists the objects of a "
                          "picture or the buttons of a screen. Fix: use --answer-form scene on grounding, GUI, "
                          "VQA and relation tasks (e.g. CoIN Grounding, ACL GUI, DCL AD, CoIN VQAv2).")
    if profile.data_root:
        raise ConfigError(f"{form} replies draw each sample again from its seed to know what it shows; they "
                          "need the kit's synthetic data, not --data-root.")
    train = suite_data.train[spec.name]
    drawn = _drawn_samples(profile, suite_data.suite.name, spec, train, "id")
    worked = worked_records(train, [drawn[r["id"]] for r in train], reply=scene_reply if form == "scene" else None)
    test_samples = _drawn_samples(profile, suite_data.suite.name, spec, suite_data.test[spec.name], "question_id")
    scored = replace(spec, scorer="final_answer",
                     scorer_params={"scorer": spec.scorer,
                                    "after": (SCENE_FAMILIES if form == "scene" else WORKED_FAMILIES)[spec.family]})
    return replace(suite_data, train={**suite_data.train, spec.name: worked}), scored, test_samples


def _drawn_samples(profile: Profile, suite: str, spec, records: list[dict], key: str) -> dict:
    """``{record[key]: sample}``: each synthetic record's sample drawn again from its seed (picture, question,
    answer and the generator's truth), at the profile's data settings."""
    from cvitkit.data.build import draw_sample, sample_index

    data = profile.data
    return {r[key]: draw_sample(suite, spec, *sample_index(r[key]), data.seed, data.image_size, data.instructions)
            for r in records}


def _agreement(rows: list[dict], test_records: list[dict], test_samples: dict | None, form: str) -> dict:
    prompts = {r["question_id"]: r["text"] for r in test_records}
    replies = [r["text"] for r in rows]
    if form == "scene":
        return scene_agreement(replies, [test_samples[r["question_id"]] for r in rows])
    if test_samples is not None:
        return worked_agreement([prompts[r["question_id"]] for r in rows], replies,
                                [test_samples[r["question_id"]] for r in rows])
    return value_letter_agreement([prompts[r["question_id"]] for r in rows], replies, [r["answer"] for r in rows])


def probe_suite(profile: str | Profile, suite: str, tasks: list[str] | None = None,
                epochs: list[float] = (1.0,), method: str = "lora_ft", log=print,
                train_per_task: int | None = None, answer_form: str = "letter",
                seed: int | None = None, blind: bool = False, train_parts=(),
                image_size: int | None = None) -> pd.DataFrame:
    """Probe every task of ``tasks`` (default: all of ``suite``) at every value of ``epochs``.

    ``train_per_task`` trains on a larger (or smaller) synthetic training set than the profile's;
    ``answer_form="value_letter"`` trains multiple-choice tasks to reply ``<value> <letter>``, and
    ``"worked"`` math, chart-trend and grounding tasks to write what they read first, and ``"scene"``
    grounding, GUI, VQA and relation tasks to list the scene first (see :func:`probe_task`);
    ``seed`` trains with another training seed than the profile's; ``blind`` shows every record one grey
    picture (its rows say ``blank`` under *images*, the others ``shown``); ``train_parts`` trains the vision
    tower (``tower``) or the output head (``head``) with the task (rows ``<preset> + tower trained``); ``image_size`` draws the
    pictures that many pixels a side, on a base model pretrained at that side (:func:`with_image_size`;
    rows ``<preset> + <side> px``).
    Returns one row per (task, epochs): training samples, answer form, training seed, the image-free references
    (chance, best constant answer, question prior, question-type prior), score, score - bar (the bar is the
    highest of the last three, as in :mod:`cvitkit.report.learnability`),
    optimizer steps and training seconds (as recorded when the probe trained), the reading columns where
    they apply, and merges it into
    ``results/<profile>/tables/<suite>_probe.{csv,md}`` (rows of other tasks, epochs, sizes, methods,
    answer forms or seeds are kept), and each probe's score per question type (where the task's questions have
    types, :mod:`cvitkit.eval.question_types`) into ``<suite>_probe_types.{csv,md}``, and, for grounding and GUI
    tasks, which object its boxes or clicks land on (:mod:`cvitkit.eval.targets`) into
    ``<suite>_probe_targets.{csv,md}``. The call's record in the table's ``.json`` names, per task and
    epochs, the base model pretraining each probe stood on (:func:`~cvitkit.runner.record_base_model`).
    """
    from cvitkit.data import load_suite
    from cvitkit.eval.chance import REFERENCE_COLUMNS, image_free_references

    profile = load_profile(profile) if isinstance(profile, str) else profile
    spec = load_suite(suite)
    if spec.protocol != "task_incremental":
        raise ConfigError(f"suite {suite!r} is a stream: the probe trains one task at a time, so it needs a "
                          "task-incremental suite (e.g. coin, mllmcl_dcl, mllmcl_acl, ucit).")
    known = [t.name for t in spec.tasks]
    unknown = sorted(set(tasks or ()) - set(known))
    if unknown:
        raise ConfigError(f"suite {suite!r} has no task(s) {unknown}; its tasks are {known}.")
    if not epochs or any(e <= 0 for e in epochs):
        raise ConfigError(f"epochs must be positive numbers, got {list(epochs)}.")
    if train_per_task is not None and train_per_task <= 0:
        raise ConfigError(f"train_per_task must be a positive number of samples, got {train_per_task}.")
    if answer_form not in ANSWER_FORMS:
        raise ConfigError(f"unknown answer form {answer_form!r}; expected one of {ANSWER_FORMS}.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"the training seed must be a whole number of 0 or more, got {seed!r}.")
    train_parts = _check_parts(train_parts)
    profile_seed, profile_side = profile.train.seed, profile.data.image_size
    profile, image_size = own_image_size(profile, image_size)
    suite_data = _probe_data(profile, spec, train_per_task, image_size)
    specs = {t.name: t for t in suite_data.suite.tasks}
    rows, type_rows, target_rows, pretrainings = [], [], [], {}
    for task in tasks or known:
        ref = image_free_references(specs[task], suite_data.train[task], suite_data.test[task])
        for n in epochs:
            log(f"[probe] {suite}/{task}: {method}, {n:g} epoch(s)" + (", blank images" if blind else ""))
            result = probe_task(profile, suite_data, task, n, method, log=log, train_per_task=train_per_task,
                                answer_form=answer_form, seed=seed, blind=blind, train_parts=train_parts,
                                image_size=image_size)
            pretrainings[f"{task}, {n:g} epochs"] = result["base_model"]
            rows.append({"task": task, "scorer": specs[task].scorer, "model": model_label(profile, train_parts, image_size),
                         "method": method, "epochs": n, "train samples": len(suite_data.train[task]),
                         "image size": profile.data.image_size,
                         "answer form": answer_form, "seed": profile_seed if seed is None else seed,
                         "images": "blank" if blind else "shown",
                         **{k: round(ref[k], 1) for k in REFERENCE_COLUMNS},
                         "score": round(result["score"], 1), "score - bar": round(result["score"] - ref["bar"], 1),
                         "steps": result["steps"], "train seconds": result["train_seconds"],
                         # every row has the columns (empty for letter probes): merge_table drops columns
                         # that a call's new rows lack, which would erase saved reading numbers
                         **{k: round(result[k], 1) if k in result else None for k in AGREEMENT_COLUMNS}})
            type_rows += [{**{k: rows[-1][k] for k in PROBE_KEY}, "question type": kind, "questions": v["questions"],
                           "score": round(v["score"], 1)} for kind, v in result["types"].items()]
            if "targets" in result:
                target_rows.append({**{k: rows[-1][k] for k in PROBE_KEY},
                                    **{k: round(result["targets"][k], 1) for k in TARGET_COLUMNS}})
    table = pd.DataFrame(rows)
    path = profile.results_dir / "tables" / f"{suite}_probe.csv"
    _merge_into(path, table, task_order=known, profile_seed=profile_seed, image_size=profile_side)
    if type_rows:
        _merge_types(path.with_name(f"{suite}_probe_types.csv"), pd.DataFrame(type_rows), known)
    if target_rows:
        merge_table(path.with_name(f"{suite}_probe_targets.csv"), pd.DataFrame(target_rows), PROBE_KEY,
                    _probe_order(known))
    # each call's provenance, appended: rows of one table may come from several calls
    append_call(path.with_suffix(".json"),
                provenance(profile=profile.name, suite=suite, model=model_label(profile, train_parts, image_size), method=method,
                           tasks=list(tasks or known), epochs=list(epochs), train_per_task=train_per_task,
                           answer_form=answer_form, seed=profile_seed if seed is None else seed,
                           blind=blind, base_model=pretrainings))
    from cvitkit.report.what_it_takes import write_what_it_takes

    write_what_it_takes(path.parent, suite, default_samples=profile.data.sizes_for(suite)["train_per_task"],
                        sequence_model=profile.model.preset)
    return table


def refresh_references(profile: str | Profile, suite: str, log=print) -> pd.DataFrame:
    """Recompute the image-free references and ``score - bar`` of every saved probe row of ``suite``, and
    rewrite its probe and *what it takes* tables; for rows written before a reference existed.

    A row's references depend only on its task, training-set size and image side (the synthetic sets are
    drawn per index and side, so a set is rebuilt exactly), not on the model, method, epochs, answer form or seed; the
    scores stay as they were measured. The call is recorded in the table's ``.json`` like a probe."""
    from cvitkit.data import load_suite
    from cvitkit.eval.chance import REFERENCE_COLUMNS, image_free_references

    profile = load_profile(profile) if isinstance(profile, str) else profile
    path = profile.results_dir / "tables" / f"{suite}_probe.csv"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: suite {suite!r} has no probe rows to refresh. Fix: run a probe "
                          f"first (python -m cvitkit.probe --suite {suite} --tasks ...).")
    spec = load_suite(suite)
    table = pd.read_csv(path)
    for column in REFERENCE_COLUMNS:  # a reference added later goes after the ones before it
        if column not in table:
            table.insert(table.columns.get_loc("score"), column, float("nan"))
    default = profile.data.sizes_for(suite)["train_per_task"]
    own_side = profile.data.image_size
    table = _with_image_size_column(table, own_side)
    for size, side in sorted(set(zip(table["train samples"], table["image size"]))):
        log(f"[probe] {suite}: references of the probes on {size} training samples per task, {side} px")
        sized, side = own_image_size(profile, int(side))
        data = _probe_data(sized, spec, None if size == default else int(size), side)
        group = (table["train samples"] == size) & (table["image size"] == sized.data.image_size)
        for task in sorted(set(table.loc[group, "task"])):
            rows = group & (table["task"] == task)
            ref = image_free_references({t.name: t for t in data.suite.tasks}[task], data.train[task],
                                        data.test[task])
            for column in REFERENCE_COLUMNS:
                table.loc[rows, column] = round(ref[column], 1)
            table.loc[rows, "score - bar"] = (table.loc[rows, "score"] - ref["bar"]).round(1)
    known = [t.name for t in spec.tasks]
    _merge_into(path, table, task_order=known, profile_seed=profile.train.seed, image_size=own_side)
    append_call(path.with_suffix(".json"),
                provenance(profile=profile.name, suite=suite, refreshed_references=list(REFERENCE_COLUMNS)))
    from cvitkit.report.what_it_takes import write_what_it_takes

    write_what_it_takes(path.parent, suite, default_samples=default, sequence_model=profile.model.preset)
    return pd.read_csv(path)


#: The columns that tell one probe row from another (the probe table's merge key).
PROBE_KEY = ["task", "model", "method", "epochs", "train samples", "answer form", "seed", "images"]


def _merge_types(path, table: pd.DataFrame, task_order: list[str]) -> None:
    """Add per-question-type rows (:mod:`cvitkit.eval.question_types`) to ``<suite>_probe_types.{csv,md}``:
    one row per probe and question type, in the probe table's order."""
    merge_table(path, table, PROBE_KEY + ["question type"], _probe_order(task_order, ["question type"]))


def _with_image_size_column(table: pd.DataFrame, image_size: int) -> pd.DataFrame:
    """``table`` with its ``image size`` column, after ``train samples``: rows saved before the column
    existed were drawn at the profile's side, ``image_size``."""
    if "image size" not in table:
        table = table.copy()
        table.insert(table.columns.get_loc("train samples") + 1, "image size", image_size)
    return table


def _probe_order(task_order: list[str], then: list[str] = ()):
    """Sort of probe rows: by the suite's task order, then model, method, form, data, epochs and seed, a
    blind probe right after the probe with pictures it repeats, then ``then``."""
    def order(merged: pd.DataFrame) -> pd.DataFrame:
        rank = merged["task"].map({t: i for i, t in enumerate(task_order)})
        return (merged.assign(_order=rank, _blind=merged["images"].eq("blank"))
                .sort_values(["_order", "model", "method", "answer form", "train samples", "epochs", "seed", "_blind",
                              *then])
                .drop(columns=["_order", "_blind"]))
    return order


def _merge_into(path, table: pd.DataFrame, task_order: list[str], profile_seed: int, image_size: int) -> None:
    """Add ``table``'s probe rows to the CSV at ``path``, ordered by the suite's task order."""
    # rows written before answer forms, seeds, blind probes and image sides were a choice trained on the
    # tasks' own replies and pictures, at the profile's side, with the profile's seed
    merge_table(path, table, PROBE_KEY, _probe_order(task_order),
                defaults={"answer form": "letter", "seed": profile_seed, "images": "shown", "image size": image_size})


def merge_table(path, table: pd.DataFrame, key: list[str], order, defaults: dict | None = None) -> pd.DataFrame:
    """Merge ``table``'s rows into the CSV at ``path`` and write it with its Markdown twin.

    A saved row with the same ``key`` values as a new one is replaced, the others stay (dropping
    columns the new rows no longer have: those of an older kit version); ``order(merged)`` sorts the
    result, which is returned. ``defaults`` fills a column that saved or new rows lack (one an older
    kit version did not write, a key column included), at the new rows' position of it. Tables built
    call by call (probes, the option-pointer probe) use it."""
    from pathlib import Path

    path = Path(path)
    defaults = defaults or {}
    table = table.assign(**{c: v for c, v in defaults.items() if c not in table.columns})
    if path.exists():
        old = pd.read_csv(path)
        for column, value in defaults.items():
            if column not in old.columns:
                old.insert(min(table.columns.get_loc(column), old.shape[1]), column, value)
        old = old[~old.set_index(key).index.isin(table.set_index(key).index)]
        old = old[[c for c in old.columns if c in table.columns]]
        # in the new rows' column order: a column added since the saved rows stays where the kit puts it
        table = pd.concat([old, table], ignore_index=True)[list(table.columns)]
    table = order(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    # empty cells stay empty (a merged CSV reads them back as NaN, which Markdown would print as "nan")
    path.with_suffix(".md").write_text(table.astype(object).where(table.notna(), "").to_markdown(index=False) + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvitkit.probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="mini", choices=available_profiles())
    parser.add_argument("--suite", required=True, help="a task-incremental suite (coin, mllmcl_dcl, ...)")
    parser.add_argument("--tasks", nargs="+", help="tasks to probe (default: every task of the suite)")
    parser.add_argument("--epochs", nargs="+", type=float, default=[1.0], help="epoch counts to try")
    parser.add_argument("--method", default="lora_ft", help="method trained on each task alone")
    parser.add_argument("--preset", help="another tiny model preset (e.g. tiny-20m: its own base model is "
                                         "pretrained first on the mini profile)")
    parser.add_argument("--train-per-task", type=int,
                        help="training samples per task (default: the profile's); a larger synthetic set "
                             "is built in its own folder")
    add_tower_options(parser)
    parser.add_argument("--caption-every-domain", action="store_true",
                        help="base model whose LLaVA stage also captions stage 0's images of every domain, the "
                             "benchmarks' included (its language model has written their kinds); pretrained first, "
                             "once")
    parser.add_argument("--answer-form", default="letter", choices=ANSWER_FORMS,
                        help="train on the task's own replies (letter), on '<value> <letter>' replies to "
                             "multiple-choice questions (value_letter, cvitkit/data/option_answers.py) or on "
                             "worked replies to math, chart-trend and grounding questions (worked, "
                             "cvitkit/data/worked_answers.py) or on replies to grounding, GUI, VQA and relation "
                             "questions that list the scene first (scene, cvitkit/data/scene_answers.py, "
                             "scene_questions.py)")
    parser.add_argument("--seed", type=int,
                        help="training seed (the adapter's initialisation and the batches' order; default: the "
                             "profile's): repeats a probe in a folder and table row of its own")
    parser.add_argument("--blind", action="store_true",
                        help="show every training and test record of the task one grey picture: the question-only "
                             "model of the same setting, a reference its score with pictures must clear")
    parser.add_argument("--train-tower", action="store_true",
                        help="train the vision tower in full with the task (at the projector's learning rate), "
                             "where every method keeps it frozen: does a tower shaped by the task read what the "
                             "frozen one drops?")
    parser.add_argument("--train-head", action="store_true",
                        help="train the language model's output head in full with the task (at the projector's "
                             "learning rate), where every method keeps it frozen: does a head that never had to "
                             "write the task's answer words hold the model back?")
    parser.add_argument("--data-root", help="real benchmark files (full profile)")
    parser.add_argument("--refresh-references", action="store_true",
                        help="train nothing: recompute the image-free references and score - bar of the suite's "
                             "saved probe rows (after a reference was added to cvitkit/eval/chance.py)")
    args = parser.parse_args(argv)
    try:
        profile = load_profile(args.profile, data_root=args.data_root)
        if args.preset:
            profile = replace(profile, model=replace(profile.model, preset=args.preset))
        profile = with_tower_options(profile, args)
        if args.refresh_references:
            print(refresh_references(profile, args.suite).to_markdown(index=False))
            return 0
        table = probe_suite(profile, args.suite, args.tasks, args.epochs, args.method,
                            train_per_task=args.train_per_task, answer_form=args.answer_form, seed=args.seed,
                            blind=args.blind, train_parts=[part for part in TRAINED_PARTS
                                                           if getattr(args, f"train_{part}")],
                            image_size=args.image_size)
    except CvitkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table.to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
