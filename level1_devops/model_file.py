"""Model files in skops format: no pickle, so loading a file cannot run arbitrary code.

Loading trusts exactly the types listed here; a file that needs any other type is refused
with the list of what it would need. Training (Level 2) and the service (Level 3) use the
same list, so what trains is what loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# skops trusts scikit-learn's estimators and numpy arrays by itself; these are the other
# types a ColumnTransformer + HistGradientBoosting pipeline needs, each checked by name.
TRUSTED_TYPES: list[str] = [
    "functools.partial",  # the ColumnTransformer's passthrough wraps check_array in a partial
    "sklearn.utils.validation.check_array",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # the fitted trees
]


class ModelFileError(RuntimeError):
    """A model file cannot be loaded safely; the message says why."""


def save_model(model: Any, path: Path) -> None:
    """Write ``model`` as a skops file."""
    import skops.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, path)


def load_model(path: Path) -> Any:
    """Load a skops model file, trusting only ``TRUSTED_TYPES``.

    Raises:
        ModelFileError: missing or unreadable file, or a type outside the trusted list.
    """
    import skops.io as sio

    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    except Exception as err:  # skops raises zipfile/json/key errors for a damaged file
        raise ModelFileError(f"{path}: not a readable skops model file: {err}") from err
    if untrusted:
        raise ModelFileError(f"{path}: refusing to load untrusted types: {', '.join(untrusted)}")
    return sio.load(path, trusted=TRUSTED_TYPES)
