"""The params a study run uses: its file with ``--set`` overrides, validated whole before anything is written, then
kept once under the artefacts, so every stage notebook of one run sees exactly the same parameters."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from .. import demo  # noqa: F401  (registers the offline demo's model and data sources)
from ..core.atomic import atomic_write_bytes
from ..spec import StudyConfig, dump_params, load_params, resolve_path
from ..study.layout import Layout
from ..study.store import ArtifactError
from ..study.workspace import Workspace


def effective_params(params_file: str | Path, artifacts: str | Path = "", overrides: Iterable[str] = ()) -> Path:
    """The params file with ``--set key.sub=value`` overrides applied, written once under the artefacts.

    Every field, source and control is checked first: a rejected run leaves nothing behind."""
    data, study = load_params(params_file, overrides)
    Workspace.create(study, artifacts)  # registered sources and controls, the device
    text = dump_params(data)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    target = resolve_path(artifacts or study.runtime.artifacts) / "params" / f"{study.name}-{digest}.yaml"
    if not target.exists():
        try:
            atomic_write_bytes(target, text.encode("utf-8"))
        except OSError as err:
            raise ArtifactError(
                f"cannot write the artefacts directory {target.parent}: {err.strerror}: choose another with --artifacts"
            ) from err
    return target


def open_study(
    params_file: str | Path, artifacts: str | Path = "", overrides: Iterable[str] = ()
) -> tuple[Path, StudyConfig, Layout]:
    """The effective params file of a run, its study, and the layout of its artefacts."""
    effective = effective_params(params_file, artifacts, overrides)
    _, study = load_params(effective)
    return effective, study, Layout(study, artifacts)
