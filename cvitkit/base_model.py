"""The ``mini`` profile's base model: a tiny LLaVA pretrained by the kit on a general synthetic mix.

Continual instruction tuning starts from an *instruction-tuned* MLLM whose abilities it must not
destroy. The kit plays that part with a tiny LLaVA trained from random initialisation, all weights
trainable, on the ``pretrain`` suite: captioning and generic VQA drawn in a visual domain no
benchmark suite uses. The model is cached under ``<work>/<profile>/base/<hash>`` keyed by everything
that determines it (model preset, data config, training settings, tokenizer corpus), with a
``base.json`` recording its training curve and held-out scores. Zero-shot rows come from it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cvitkit.config import config_hash, key_fields
from cvitkit.errors import ConfigError, DataError
from cvitkit.lm_loss import forward_with_loss
from cvitkit.profiles import Profile
from cvitkit.provenance import atomic_write_json, provenance, work_dir
from cvitkit.train_config import BaseModelConfig  # noqa: F401  (re-exported)


def base_key(profile: Profile, corpus_lines: list[str]) -> str:
    """Hash of everything the base model depends on, the pretraining suite's definition included."""
    from cvitkit.data import load_suite

    suite = asdict(load_suite(profile.base.suite))
    # cached base models keep their key
    base = key_fields(profile.base, added_later=("vision_position_weight", "vision_object_weight",
                                                   "caption_every_domain"))
    key = {"model": asdict(profile.model), "base": base, "image_size": profile.data.image_size,
           "corpus": config_hash({"c": corpus_lines}), "suite": config_hash(suite)}
    if profile.base.vision_suite:
        key["vision_suite"] = config_hash(asdict(load_suite(profile.base.vision_suite)))
    return config_hash(key)


def base_dir_for(profile: Profile, corpus_lines: list[str]) -> Path:
    return work_dir(profile.name) / "base" / base_key(profile, corpus_lines)


def ensure_base_model(profile: Profile, log=print) -> Path:
    """Return the folder of the profile's base model, pretraining it first if it is not cached."""
    from cvitkit.data import corpus

    lines = corpus()
    folder = base_dir_for(profile, lines)
    if (folder / "base.json").is_file():
        return folder
    log(f"pretraining the base model ({profile.model.preset}) into {folder} — cached for later runs")
    return pretrain_base_model(profile, folder, lines, log=log)


def pretrain_base_model(profile: Profile, folder: Path, corpus_lines: list[str], log=print) -> Path:
    """Train every weight of a fresh tiny LLaVA on the pretraining suite and save it to ``folder``."""
    from dataclasses import replace

    from torch.utils.data import DataLoader

    from cvitkit.data import RecordDataset, TrainCollator, build_suite, load_suite, load_suite_data
    from cvitkit.models import build_tiny_llava, count_parameters
    from cvitkit.train import build_scheduler, clipped_step, seed_everything

    cfg = profile.base
    seed_everything(cfg.seed)
    suite = load_suite(cfg.suite)
    data_cfg = replace(profile.data, train_per_task=cfg.train_per_task, test_per_task=cfg.test_per_task)
    data_root = work_dir(profile.name) / "data_base"
    build_suite(suite, data_cfg, data_root)
    data = load_suite_data(suite, root=data_root)
    records = [r for task in suite.tasks for r in data.train[task.name]]
    if cfg.caption_every_domain:
        records += _every_domain_captions(profile)
    model, processor = build_tiny_llava(profile.model.preset, corpus=corpus_lines, seed=cfg.seed,
                                        image_size=profile.data.image_size)
    vision_report = _pretrain_vision(profile, model, processor, log) if cfg.vision_suite else None
    model.train()
    generator = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(RecordDataset(records, data.image_root), batch_size=cfg.batch_size, shuffle=True,
                        generator=generator, collate_fn=TrainCollator(processor))
    total = max(1, int(math.ceil(len(loader) * cfg.epochs)))
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trained if p.ndim >= 2]
    no_decay = [p for n, p in trained if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    scheduler = build_scheduler(optimizer, "cosine", cfg.warmup_ratio, total)
    curve, step, t0 = [], 0, time.time()
    bar = tqdm(total=total, desc="pretrain base model", disable=None)
    window: list[float] = []
    while step < total:
        for batch in loader:
            if step >= total:
                break
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values", "labels")}
            _, loss = forward_with_loss(model, inputs)
            clipped_step(loss, [p for _, p in trained], optimizer, scheduler)
            window.append(loss.item())
            step += 1
            bar.update(1)
            if step % 50 == 0 or step == total:
                curve.append({"step": step, "loss": sum(window) / len(window)})
                bar.set_postfix(loss=f"{curve[-1]['loss']:.3f}")
                window = []
            if step % max(1, total // 10) == 0:  # a plain line too, for logs where tqdm is hidden
                log(f"  step {step}/{total}, loss {curve[-1]['loss'] if curve else float('nan'):.3f}, "
                    f"{time.time() - t0:.0f} s")
    bar.close()
    train_seconds = time.time() - t0
    model.eval()
    held_out = _score_held_out(model, processor, suite, data)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    atomic_write_json(folder / "base.json", {
        "config": asdict(cfg), "preset": profile.model.preset, "parameters": count_parameters(model),
        "samples": len(records), "steps": total, "train_seconds": round(train_seconds, 1), "loss_curve": curve,
        "held_out": held_out, "vision_stage": vision_report, "provenance": provenance(seed=cfg.seed)})
    log(f"base model ready: {total} steps in {train_seconds:.0f} s; held-out " +
        ", ".join(f"{k} {v:.1f}" for k, v in held_out.items()))
    return folder


def _pretrain_vision(profile: Profile, model, processor, log) -> dict:
    """Stage 0: the vision tower learns every domain's concepts from captions, then is frozen."""
    from cvitkit.vision_pretrain import position_readout, pretrain_vision_tower

    cfg = profile.base
    records, image_root, tasks = _vision_records(profile)
    images = _load_vision_images(profile, enumerate(records), image_root)
    captions = [r["conversations"][-1]["value"] for r in records]
    log(f"stage 0: vision tower on {len(images)} captioned images of {tasks} domains/kinds")
    objects = _vision_objects(profile, records) if cfg.vision_object_weight else None
    report = pretrain_vision_tower(model, processor, images, captions, epochs=cfg.vision_epochs, lr=cfg.vision_lr,
                                   batch_size=cfg.vision_batch_size, seed=cfg.seed,
                                   position_weight=cfg.vision_position_weight,
                                   object_weight=cfg.vision_object_weight, objects=objects)
    for p in model.model.vision_tower.parameters():
        p.requires_grad_(False)  # as LLaVA keeps CLIP frozen: later stages cannot undo what it learned
    # can the language model still tell where a patch is? (row/column R² of a linear read-out)
    report["position_readout"] = position_readout(model, processor, readout_images(images))
    log(f"stage 0 done: {report['steps']} steps in {report['train_seconds']:.0f} s, "
        f"loss {report['loss_curve'][0]['loss']:.3f} -> {report['loss_curve'][-1]['loss']:.3f}, position R² "
        f"row {report['position_readout']['row']:.2f}, column {report['position_readout']['column']:.2f}")
    return report


def _vision_records(profile: Profile) -> tuple[list[dict], Path, int]:
    """Stage 0's captioned records (the vision suite, built once under ``data_vision``), their image
    folder and the suite's task count."""
    from dataclasses import replace

    from cvitkit.data import build_suite, load_suite, load_suite_data

    cfg = profile.base
    suite = load_suite(cfg.vision_suite)
    data_cfg = replace(profile.data, train_per_task=cfg.vision_train_per_task, test_per_task=1)
    data_root = work_dir(profile.name) / "data_vision"
    build_suite(suite, data_cfg, data_root)
    data = load_suite_data(suite, root=data_root)
    return [r for task in suite.tasks for r in data.train[task.name]], data.image_root, len(suite.tasks)


def _every_domain_captions(profile: Profile) -> list[dict]:
    """Stage 0's captioned records with absolute image paths, for the LLaVA stage of a base model with
    ``caption_every_domain`` (they join the pretraining suite's records, whose images lie elsewhere)."""
    if not profile.base.vision_suite:
        raise ConfigError("base.caption_every_domain trains the LLaVA stage on stage 0's captioned images too, but "
                          "base.vision_suite is empty (no stage 0). Fix: set base.vision_suite (e.g. vision_pretrain) "
                          "or leave caption_every_domain off.")
    records, image_root, _ = _vision_records(profile)
    return [{**r, "image": str((Path(image_root) / r["image"]).resolve())} for r in records]


def _vision_objects(profile: Profile, records: list[dict]) -> list[list[dict]]:
    """The drawn objects (kind and pixel box) of each stage-0 record, drawn again from its seed, for the
    patch-object term."""
    from cvitkit.data import load_suite
    from cvitkit.data.build import draw_sample, sample_index

    suite = load_suite(profile.base.vision_suite)
    specs, data = {t.name: t for t in suite.tasks}, profile.data
    out = []
    for r in records:
        split, index = sample_index(r["id"])
        task = r["id"].rsplit("_", 2)[0]
        sample = draw_sample(suite.name, specs[task], split, index, data.seed, data.image_size, data.instructions)
        if sample.answer != r["conversations"][-1]["value"]:
            raise DataError(f"stage-0 record {r['id']!r}: its caption on disk is not the one its seed draws. Fix: "
                            f"delete {work_dir(profile.name) / 'data_vision'} so that it is built again.")
        size = sample.image.size[0]
        out.append([{"kind": o["kind"], "box": [v / size for v in o["box"]]} for o in sample.truth.get("objects", [])])
    return out


def _load_vision_images(profile: Profile, numbered, image_root) -> list:
    """The images of ``(index, record)`` pairs of :func:`_vision_records` (the index names a bad record)."""
    from cvitkit.data.dataset import load_image

    return [load_image(r, image_root, i, profile.base.vision_suite) for i, r in numbered]


def readout_images(images: list, count: int = 256) -> list:
    """About ``count`` of stage 0's images, evenly spread over its domains, for :func:`position_readout`."""
    return images[:: max(1, len(images) // count)]


def tower_position_readout(profile: Profile, folder: str | Path) -> dict[str, float]:
    """Row and column R² of a linear read-out of the saved base model's patch features (as base.json
    records for base models pretrained since the read-out existed), on the stage-0 images that
    pretraining reads it on (only those are loaded)."""
    from cvitkit.models.loading import load_model
    from cvitkit.vision_pretrain import position_readout

    model, processor = load_model(folder)
    records, image_root, _ = _vision_records(profile)
    images = _load_vision_images(profile, readout_images(list(enumerate(records))), image_root)
    return position_readout(model, processor, images)


def _score_held_out(model, processor, suite, data) -> dict[str, float]:
    from cvitkit.eval.evaluate import evaluate_task
    from cvitkit.methods.zero_shot import ZeroShot, ZeroShotConfig

    method = ZeroShot(ZeroShotConfig())
    method.setup(model, processor)
    return {t.name: evaluate_task(method, processor, data.test[t.name], t, data.image_root).score for t in suite.tasks}


def load_base_report(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "base.json").read_text())


def base_identity(folder: str | Path) -> dict:
    """Which pretraining of a base model a result stands on.

    The key (the folder's name) names the configuration only: two pretrainings of one key differ when
    the thread layout changes the order of float sums (see ``results/mini/LEARNABILITY.md``). The hash of
    the weights tells them apart; the held-out scores, date and thread count say which is which.
    """
    import hashlib

    folder = Path(folder)
    digest = hashlib.sha256()
    for weights in sorted(folder.glob("*.safetensors")):
        digest.update(weights.read_bytes())
    identity = {"key": folder.name, "weights_sha256": digest.hexdigest()[:16]}
    if (folder / "base.json").is_file():
        report = load_base_report(folder)
        made = report.get("provenance") or {}
        identity.update(held_out={k: round(v, 1) for k, v in report.get("held_out", {}).items()},
                        pretrained=made.get("created"), git_commit=made.get("git_commit"),
                        torch_threads=(made.get("device") or {}).get("torch_threads"))
    return identity
