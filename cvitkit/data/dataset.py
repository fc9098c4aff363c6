"""A torch ``Dataset`` over in-memory records that loads each record's image on access."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from cvitkit.errors import DataError


def load_image(record: dict, image_root: str | Path | None, index: int, source=None):
    """The record's image as RGB (``None`` for a text-only record); a clear :class:`DataError` otherwise."""
    from PIL import Image, UnidentifiedImageError

    image = record.get("image")
    if not image:
        return None
    rid = record.get("id", record.get("question_id"))
    where = f"{source or 'records'}: record {index} (id {rid!r})"
    path = Path(image_root) / image if image_root is not None else Path(image)
    if not path.is_file():
        raise DataError(f"{where}: image {path} not found. Fix: put the image there or correct the record's 'image' "
                        f"path (relative to {image_root}); synthetic suites are rebuilt by deleting their folder.")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise DataError(f"{where}: image {path} is corrupt or unreadable ({exc}). Fix: replace the file with a "
                        "valid PNG/JPEG or remove the record.") from exc


class RecordDataset(Dataset):
    """Records (train or eval) plus their images.

    ``dataset[i]`` is a shallow copy of record ``i`` with ``"pil_image"`` (a PIL RGB image, or ``None``
    for text-only records) — what :class:`~cvitkit.data.collate.TrainCollator` and
    :class:`~cvitkit.data.collate.EvalCollator` take.
    """

    def __init__(self, records: list[dict], image_root: str | Path | None, source=None):
        self.records = records
        self.image_root = Path(image_root) if image_root is not None else None
        self.source = source

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        return {**record, "pil_image": load_image(record, self.image_root, index, self.source)}

    @property
    def tasks(self) -> list[str | None]:
        return [r.get("task") for r in self.records]
