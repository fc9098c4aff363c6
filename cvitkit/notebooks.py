"""Execute the kit's notebooks (jupytext percent ``.py`` files) with papermill."""

from __future__ import annotations

import os
from pathlib import Path

from cvitkit.profiles import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "cvitkit"


def kernel_name() -> str:
    """The venv's registered kernel when present, else ``python3`` (papermill then uses this interpreter)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        if KERNEL_NAME in KernelSpecManager().find_kernel_specs():
            return KERNEL_NAME
    except Exception:  # noqa: BLE001 - no jupyter_client: papermill is absent too and will say so
        pass
    return "python3"


def notebook_path(name: str) -> Path:
    path = NOTEBOOK_DIR / (name if name.endswith(".py") else f"{name}.py")
    if not path.is_file():
        raise FileNotFoundError(f"no notebook {path}; the notebooks live in {NOTEBOOK_DIR} as jupytext .py files.")
    return path


def execute_notebook(name: str, output: str | Path, parameters: dict | None = None, timeout: int | None = None):
    """Run ``notebooks/<name>.py`` with ``parameters`` and save the executed copy to ``output`` (.ipynb).

    The working directory is the repository root, so relative paths in parameters resolve there.
    Raises ``papermill.PapermillExecutionError`` (with the failing cell) when a cell fails.
    """
    import jupytext
    import papermill

    nb = jupytext.read(notebook_path(name))
    nb.metadata["kernelspec"] = {"name": kernel_name(), "display_name": "cvitkit (venv)", "language": "python"}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    env_backup = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"  # figures are saved, not shown in a window
    try:
        executed = papermill.execute_notebook(
            nb, str(output), parameters=parameters or {}, kernel_name=kernel_name(), cwd=str(REPO_ROOT),
            progress_bar=False, execution_timeout=timeout,
        )
        strip_widget_state(output)
        return executed
    finally:
        if env_backup is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_backup


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def strip_widget_state(path: str | Path) -> int:
    """Drop Jupyter widget state (tqdm bars) from an executed notebook; returns the outputs touched.

    Widget state is megabytes of JavaScript-side models that only a live kernel can render; the text
    each bar printed stays in the output's ``text/plain``, so no printed line is lost.
    """
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    touched = int(nb.metadata.pop("widgets", None) is not None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if WIDGET_MIME in out.get("data", {}):
                del out["data"][WIDGET_MIME]
                touched += 1
    nbformat.write(nb, path)
    return touched
