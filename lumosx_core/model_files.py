"""The model files the shipped workflows load, described once in ``lumosx_core/models.json``.

Each entry says where a file comes from (a model-hub repository, a revision and the files in
it, with the sha256 and size the source publishes, or ``None`` where it publishes none), how it
becomes the file ComfyUI reads (``kind``: ``file`` placed as it is, ``pack`` a folder of files
under ``<folder>/models/<name>/`` like insightface packs, ``convert`` a release folder
converted to one safetensors file), the ComfyUI model folder it goes in and which node input
loads it.

Read by the ``lumosx models`` command (``status`` / ``get``), by the demo's "which files to
fetch" message, by the Model Loader's error for a missing file (:func:`missing_file_message`)
and by the shipped workflows' download metadata (:meth:`ModelFile.frontend_entry`). No
ComfyUI import, no network: the download itself lives in :mod:`lumosx_core.cli.hub`.
"""
from __future__ import annotations

import functools
import json
import os
import posixpath
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple
from urllib.parse import quote

MANIFEST_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models.json")
#: the command that downloads, verifies, converts and places the files
FETCH_COMMAND = "lumosx models get"
DOCS = "docs/models.md"
KINDS = ("file", "pack", "convert")
#: ComfyUI's own default sub-folders of ``models/`` for the folder names the manifest uses
#: (``folder_paths``: ``diffusion_models`` also reads ``unet``, ``text_encoders`` also
#: ``clip``); any other name is ``models/<name>`` (how this pack registers ``lumosx`` and
#: ``insightface``). Used only for a bare models folder (``--models-dir``); with a ComfyUI
#: folder its own ``folder_paths`` decides.
DEFAULT_SUBFOLDERS = {"diffusion_models": ("diffusion_models", "unet"),
                      "text_encoders": ("text_encoders", "clip")}


@dataclass(frozen=True)
class SourceFile:
    """One file in the source repository."""

    path: str                    # path inside the repository (``/``-separated)
    sha256: Optional[str] = None  # what the source publishes (lower-case hex), else None
    size: Optional[int] = None    # bytes, when published

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


@dataclass(frozen=True)
class ModelFile:
    """One thing a shipped workflow loads: a file (or a face pack folder) and its source."""

    id: str
    name: str                    # the file name ComfyUI lists (a pack: its folder name)
    kind: str                    # one of KINDS
    what: str
    folder: str                  # ComfyUI model folder name (folder_paths key)
    also_in: Tuple[str, ...]     # other folders the loading node also reads
    node: str                    # node id of the loader
    input: str                   # its input that names this file
    repo: str
    revision: str
    files: Tuple[SourceFile, ...]
    listing: Optional[str]       # ``convert``: the repository folder whose files make it
    page: str                    # a human-readable page for the source
    source_note: str
    licence: str
    hub: str

    @property
    def folders(self) -> Tuple[str, ...]:
        return (self.folder,) + self.also_in

    def file_url(self, f: SourceFile) -> str:
        """The public download address of a source file (``<hub>/<repo>/resolve/...``)."""
        return f"{self.hub}/{self.repo}/resolve/{quote(self.revision, safe='')}/{quote(f.path)}"

    @property
    def url(self) -> str:
        """Where a person gets it: the file itself for a single file, else the source page
        (the DiT must be converted; a pack is several files)."""
        return self.file_url(self.files[0]) if self.kind == "file" else self.page

    @property
    def source(self) -> str:
        """The repository, and the folder or file in it (a pack: the repository's files)."""
        if self.kind == "pack":
            return self.repo
        return f"{self.repo} ({self.listing + '/' if self.listing else self.files[0].path})"

    def frontend_entry(self) -> dict:
        """The node metadata ComfyUI's frontend reads for its missing-models dialog
        (``properties.models`` of the loader node): name, url, directory, and the sha256
        where published."""
        entry = {"name": self.name, "url": self.url, "directory": self.folder}
        if self.kind == "file" and self.files[0].sha256:
            entry.update(hash=self.files[0].sha256, hash_type="SHA256")
        return entry

    def fetch_hint(self) -> str:
        """The command that gets this file, and what it does."""
        verb = "downloads, verifies and converts" if self.kind == "convert" else \
            "downloads and verifies"
        return f"`{FETCH_COMMAND} --only {self.id}` {verb} it (from {self.source})"


@dataclass(frozen=True)
class Manifest:
    hub: str
    models: Tuple[ModelFile, ...]

    def find(self, key: str) -> Optional[ModelFile]:
        """The entry whose id or file name is ``key``."""
        for m in self.models:
            if key in (m.id, m.name):
                return m
        return None

    def get(self, key: str) -> ModelFile:
        m = self.find(key)
        if m is None:
            raise KeyError(f"{key!r} is not a model file of the shipped workflows (one of: "
                           f"{', '.join(x.id for x in self.models)})")
        return m

    def for_node(self, node: str) -> Tuple[ModelFile, ...]:
        return tuple(m for m in self.models if m.node == node)


def _source_file(d: dict) -> SourceFile:
    sha = d.get("sha256")
    if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise ValueError(f"models.json: {d.get('path')}: sha256 must be 64 lower-case hex digits")
    size = d.get("size")
    return SourceFile(path=d["path"], sha256=sha, size=None if size is None else int(size))


def parse_manifest(data: dict) -> Manifest:
    """Check and read the manifest's JSON form."""
    hub = data.get("hub", "https://huggingface.co").rstrip("/")
    models = []
    for d in data["models"]:
        kind = d["kind"]
        if kind not in KINDS:
            raise ValueError(f"models.json: {d['id']}: kind {kind!r} is not one of {KINDS}")
        files = tuple(_source_file(f) for f in d.get("files", ()))
        if kind == "convert" and not d.get("listing"):
            raise ValueError(f"models.json: {d['id']}: a convert entry names its 'listing'")
        if kind != "convert" and not files:
            raise ValueError(f"models.json: {d['id']}: no files")
        if kind == "file" and len(files) != 1:
            raise ValueError(f"models.json: {d['id']}: a file entry has exactly one file")
        models.append(ModelFile(
            id=d["id"], name=d["name"], kind=kind, what=d["what"], folder=d["folder"],
            also_in=tuple(d.get("also_in", ())), node=d["node"], input=d["input"],
            repo=d["repo"], revision=d.get("revision", "main"), files=files,
            listing=d.get("listing"), page=d["page"], source_note=d.get("source_note", ""),
            licence=d.get("licence", ""), hub=hub))
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        raise ValueError("models.json: duplicate ids")
    return Manifest(hub=hub, models=tuple(models))


@functools.lru_cache(maxsize=None)
def load_manifest(path: str = MANIFEST_PATH) -> Manifest:
    """The manifest (read once)."""
    with open(path, encoding="utf-8") as f:
        return parse_manifest(json.load(f))


def plain_folders(models_dir: str, names: Sequence[str]) -> Dict[str, list]:
    """``{folder name: [paths]}`` for a bare ComfyUI ``models`` folder (ComfyUI's default
    layout, :data:`DEFAULT_SUBFOLDERS`)."""
    return {n: [os.path.join(models_dir, sub) for sub in DEFAULT_SUBFOLDERS.get(n, (n,))]
            for n in names}


def missing_file_message(input_name: str, value: str, folders: Sequence[str]) -> str:
    """The error for a model file a node cannot find: where it looked, and the command that
    fetches it (a file of the shipped workflows), else what to do with one's own file."""
    where = " or ".join(f"models/{f}" for f in folders)
    m = load_manifest().find(value)
    if m is not None:
        return (f"{input_name} '{value}': not found in {where}. {m.fetch_hint()} into the "
                f"folder ComfyUI reads; then refresh (see {DOCS})")
    shipped = [x for x in load_manifest().models if x.folder in folders]
    hint = "".join(f"; `{FETCH_COMMAND}` fetches the shipped {x.name}" for x in shipped)
    return f"{input_name} '{value}': not found in {where}: put the file there and refresh{hint}"
