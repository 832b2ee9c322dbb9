"""Reading params files: ``base:`` inheritance, ``--set key.sub=value`` overrides, validation, repo paths."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .fields import from_dict
from .schema import StudyConfig
from .validate import validate_study


def repo_root() -> Path:
    """The checkout this package lives in (an editable install), where params/ and data/ are."""
    return Path(__file__).resolve().parents[3]


def resolve_path(path: str | Path) -> Path:
    """Relative paths are taken from the current directory if they exist there, else from the repo root.

    Notebooks opened in JupyterLab run in ``notebooks/``, papermill runs in the caller's directory: both work.
    """
    path = Path(path).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve() if path.exists() else path
    return repo_root() / path


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
        )
    return out


def read_params(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A params file as a mapping; ``base: other.yaml`` (beside it) is read first and overridden key by key."""
    path = resolve_path(path)
    if not path.exists():
        raise ConfigError(f"params file {path} does not exist: use e.g. params/demo.yaml")
    if path in _seen:
        raise ConfigError(f"{path.name} includes itself through 'base'")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must hold a mapping of sections (model, languages, tasks, …)")
    if "base" in data:
        base = data.pop("base")
        if not isinstance(base, str):
            raise ConfigError(f"{path.name}: base must be the name of another params file")
        data = _merge(read_params(path.parent / base, (*_seen, path)), data)
    return data


def apply_override(data: dict[str, Any], item: str) -> None:
    """One ``--set key.sub=value`` into raw params, in place; the value is read as YAML (``[0.5, 0.8]``, ``true``)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {item!r} must look like key.sub=value")
    node = data
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part!r} is not a section of the params file")
    try:
        node[last] = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: {raw!r} is not a YAML value ({str(err).splitlines()[0]})") from None


def study_from_dict(data: Mapping[str, Any], where: str) -> StudyConfig:
    """A validated study from raw params; errors start with ``where`` (the file, and any ``--set``)."""
    try:
        return validate_study(from_dict(StudyConfig, data))
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def load_params(path: str | Path, overrides: Iterable[str] = ()) -> tuple[dict[str, Any], StudyConfig]:
    """The raw params of a file with ``overrides`` applied, and the study they describe, validated.

    The file is validated on its own first, so an error in it names the file rather than an override."""
    data = read_params(path)
    study = study_from_dict(data, Path(path).name)
    overrides = list(overrides)
    if overrides:
        for item in overrides:
            apply_override(data, item)
        study = study_from_dict(data, f"{Path(path).name} with --set {' '.join(overrides)}")
    return data, study


def load_study(path: str | Path, overrides: Iterable[str] = ()) -> StudyConfig:
    """Read and validate a params file (with optional ``--set`` overrides)."""
    return load_params(path, overrides)[1]


def dump_params(data: Mapping[str, Any]) -> str:
    """Raw params as canonical YAML: the same params give the same text (and the same file name under artefacts)."""
    return yaml.safe_dump(dict(data), sort_keys=True, allow_unicode=True)
