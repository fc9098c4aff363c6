"""Shared fixtures. Tests never write into the repository: results and work folders go to a temp dir."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before anything imports the kit, so notebook kernels started by papermill inherit them too.
_SCRATCH = Path(tempfile.mkdtemp(prefix="cvitkit-tests-"))
os.environ.setdefault("CVITKIT_RESULTS", str(_SCRATCH / "results"))
os.environ.setdefault("CVITKIT_WORK", str(_SCRATCH / "runs"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parent.parent


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def pytest_collection_modifyitems(config, items):
    import torch

    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    skip_bnb = pytest.mark.skip(reason="needs bitsandbytes (pip install -e '.[quant]')")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "quant" in item.keywords and not _has("bitsandbytes"):
            item.add_marker(skip_bnb)


@pytest.fixture(scope="session")
def micro_llava():
    """A random ``micro`` tiny LLaVA and its processor (shared; do not modify in place)."""
    from cvitkit.models import build_tiny_llava

    return build_tiny_llava("micro", seed=0)


@pytest.fixture(scope="session")
def micro_llava_dir(micro_llava, tmp_path_factory):
    """The ``micro`` model saved in Hugging Face format."""
    model, processor = micro_llava
    path = tmp_path_factory.mktemp("micro_llava")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def method_on_4bit(micro_dir, name: str, overrides: dict | None = None, **build_kwargs):
    """Method ``name`` (mini preset + ``overrides``) set up on the ``micro`` model loaded with a 4-bit
    language model in training mode: ``(method, processor)``. Needs bitsandbytes (mark the test ``quant``)."""
    from cvitkit.methods.base import build_method
    from cvitkit.models import enable_training_mode, load_model

    model, processor = load_model(micro_dir, quantization="4bit")
    enable_training_mode(model)
    method = build_method(name, "mini", overrides, **build_kwargs)
    method.setup(model, processor)
    return method, processor


def make_image(size: int, colour: str = "red"):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(image).rectangle([size // 4, size // 4, 3 * size // 4, 3 * size // 4], fill=colour)
    return image


def qa_batch(processor, items, train: bool = True, task: str = "A", size: int = 32):
    """A collated batch of ``(question, answer, box colour)`` items on plain box images: training
    records through ``TrainCollator`` or evaluation records through ``EvalCollator``."""
    from cvitkit.data import EvalCollator, TrainCollator
    from cvitkit.data.llava_format import train_record

    records = []
    for i, (question, answer, colour) in enumerate(items):
        if train:
            r = train_record(str(i), "x.png", question, answer, task=task)
        else:
            r = {"question_id": str(i), "image": "x.png", "text": question, "answer": answer, "task": task}
        r["pil_image"] = make_image(size, colour)
        records.append(r)
    return (TrainCollator if train else EvalCollator)(processor)(records)


def micro_smoke(**train):
    """The smoke profile shrunk for seconds-long end-to-end runs: the micro model, 6 train and 2 test
    samples per task at 32 px, 4 generated tokens. Keyword arguments refine the ``train`` section
    (e.g. ``batch_size=2``). Also imported by scripts the tests launch in other processes."""
    from dataclasses import replace

    from cvitkit.profiles import load_profile

    profile = load_profile("smoke")
    return replace(profile, model=replace(profile.model, preset="micro"),
                   data=replace(profile.data, train_per_task=6, test_per_task=2, image_size=32),
                   train=replace(profile.train, max_new_tokens=4, **train))


@pytest.fixture
def micro_smoke_profile(tmp_path, monkeypatch):
    """:func:`micro_smoke` as a factory, with work and results folders under ``tmp_path``."""
    monkeypatch.setenv("CVITKIT_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("CVITKIT_RESULTS", str(tmp_path / "results"))
    return micro_smoke
