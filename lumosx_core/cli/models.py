"""``lumosx models status`` / ``lumosx models get``: every model file the shipped workflows
load (``lumosx_core/models.json``), where that ComfyUI reads it, and fetching what is missing:
downloaded from its public source (:mod:`.hub`), verified, the LumosX release converted with
:func:`lumosx_core.convert.convert`, and placed in the folder ComfyUI reads."""
from __future__ import annotations

import json
import os
import posixpath
import shutil
import sys
from dataclasses import dataclass, field
from typing import List, Optional

from ..model_files import DOCS, MANIFEST_PATH, ModelFile, load_manifest, plain_folders
from .comfy_folders import Folders, FoldersError, comfy_folders
from .host import find_comfyui, find_python
from .hub import (PARTIAL_SUFFIX, FetchError, Hub, expected, fetch_file, partials_of)
from .progress import Progress, human_size
from .run import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

STAGING = ".lumosx-download"


def register(subparsers) -> None:
    models = subparsers.add_parser(
        "models", help="the model files the workflows need: status, get",
        description="The model files the shipped workflows load: where your ComfyUI reads "
                    "them (its own folder_paths, extra_model_paths.yaml included) and "
                    f"fetching the missing ones. See {DOCS}.")
    sub = models.add_subparsers(dest="models_command", metavar="ACTION")
    for name, func, text in (
            ("status", cmd_status, "list each file: where it must be, present or missing, "
                                   "size, the node that uses it"),
            ("get", cmd_get, "download, verify, convert and place the missing files")):
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        where = p.add_mutually_exclusive_group()
        where.add_argument("--comfyui", metavar="DIR", help="your ComfyUI folder (default: "
                           "$LUMOSX_COMFYUI, $COMFYUI_PATH, the ComfyUI this pack is installed "
                           "in, else the test host)")
        where.add_argument("--models-dir", metavar="DIR", help="a bare ComfyUI models/ folder "
                           "(ComfyUI's default layout) instead of a ComfyUI")
        p.add_argument("--python", metavar="PY", help="the interpreter of that ComfyUI "
                       "(default: found as for `lumosx serve`)")
        p.add_argument("--base-directory", metavar="DIR", help="as ComfyUI's --base-directory")
        p.add_argument("--extra-model-paths-config", metavar="FILE", action="append",
                       default=[], help="as ComfyUI's option (repeatable); the ComfyUI "
                       "folder's own extra_model_paths.yaml is always read")
        p.add_argument("--manifest", metavar="FILE", default=MANIFEST_PATH,
                       help="the list of files (default: the pack's lumosx_core/models.json)")
        p.add_argument("--only", metavar="NAME", action="append", default=[],
                       help="only this file: an id or file name from `lumosx models status` "
                            "(repeatable)")
        if name == "get":
            p.add_argument("--dry-run", action="store_true",
                           help="print what would be fetched and the total size; change nothing")
        else:
            p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
    models.set_defaults(func=lambda args: (models.print_help(), EXIT_USAGE)[1])


# -- where things are ---------------------------------------------------------------------------

@dataclass
class Location:
    """One manifest entry in one ComfyUI's folders."""

    model: ModelFile
    searched: List[str]          # the folders (a pack: pack folders) looked in, in order
    target: str                  # where `get` puts it (file path, or pack folder)
    found: Optional[str] = None  # the present file / pack folder
    size: Optional[int] = None   # bytes on disk when present
    partial: int = 0             # bytes of unfinished downloads
    missing_files: List[str] = field(default_factory=list)  # a pack's absent files

    @property
    def present(self) -> bool:
        return self.found is not None

    @property
    def state(self) -> str:
        if self.present:
            return "present"
        return "partial" if self.partial else "missing"


def _size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def _partial_bytes(folder: str) -> int:
    """Bytes in a staging folder (verified files and partial ones)."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)


def locate(model: ModelFile, folders: Folders) -> Location:
    if model.kind == "pack":
        roots = folders.paths.get(model.folder) or [folders.target(model.folder)]
        searched = [os.path.join(r, "models", model.name) for r in roots]
        target = os.path.join(folders.target(model.folder), "models", model.name)
        loc = Location(model, searched, target)
        names = [f.name for f in model.files]
        for d in searched:
            missing = [n for n in names if not os.path.isfile(os.path.join(d, n))]
            if not missing:
                loc.found, loc.size = d, _size(d)
                return loc
        loc.missing_files = [n for n in names if not os.path.isfile(os.path.join(target, n))]
        loc.partial = sum(os.path.getsize(p) for n in names
                          for p in partials_of(os.path.join(target, n))) + \
            _partial_bytes(staging_dir(loc))
        return loc
    searched = [p for name in model.folders for p in folders.paths.get(name, [])]
    target = os.path.join(folders.target(model.folder), model.name)
    loc = Location(model, searched, target)
    for d in searched:
        path = os.path.join(d, model.name)
        if os.path.isfile(path):
            loc.found, loc.size = path, os.path.getsize(path)
            return loc
    loc.partial = sum(os.path.getsize(p) for p in partials_of(target)) + \
        (_partial_bytes(staging_dir(loc)) if model.kind == "convert" else 0)
    return loc


def _folders(args) -> Folders:
    names = sorted({n for m in load_manifest(os.path.abspath(args.manifest)).models
                    for n in m.folders})
    if args.models_dir:
        d = os.path.abspath(os.path.expanduser(args.models_dir))
        return Folders(d, plain_folders(d, names), f"models folder {d}")
    comfy = find_comfyui(args.comfyui)
    comfy_args = []
    if args.base_directory:
        comfy_args += ["--base-directory", os.path.abspath(args.base_directory)]
    for cfg in args.extra_model_paths_config:
        comfy_args += ["--extra-model-paths-config", os.path.abspath(cfg)]
    return comfy_folders(comfy, find_python(comfy, args.python), names, comfy_args)


def _select(args) -> List[ModelFile]:
    manifest = load_manifest(os.path.abspath(args.manifest))
    if not args.only:
        return list(manifest.models)
    return [manifest.get(key) for key in dict.fromkeys(args.only)]


def _setup(args):
    """(folders, locations) or an exit code after printing why."""
    prog = f"lumosx models {args.models_command}"
    try:
        chosen = _select(args)
    except KeyError as e:
        print(f"{prog}: --only {e.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError) as e:
        print(f"{prog}: --manifest {args.manifest}: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        folders = _folders(args)
    except (FileNotFoundError, FoldersError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_USAGE
    return folders, [locate(m, folders) for m in chosen]


# -- status -------------------------------------------------------------------------------------

def cmd_status(args) -> int:
    setup = _setup(args)
    if isinstance(setup, int):
        return setup
    folders, locs = setup
    if args.json:
        print(json.dumps([{
            "id": loc.model.id, "name": loc.model.name, "kind": loc.model.kind,
            "folder": loc.model.folder, "node": loc.model.node, "input": loc.model.input,
            "state": loc.state, "path": loc.found, "size": loc.size, "target": loc.target,
            "partial_bytes": loc.partial, "searched": loc.searched,
            "source": loc.model.source, "url": loc.model.url} for loc in locs], indent=2))
        return EXIT_OK
    print(f"LumosX model files ({folders.source}; models folder {folders.models_dir}):")
    width = max(len(loc.model.name) for loc in locs)
    for loc in locs:
        m = loc.model
        size = human_size(loc.size) if loc.present else (
            f"{human_size(loc.partial)} downloaded" if loc.partial else "-")
        print(f"  {m.name:<{width}}  {loc.state:<8} {size:>16}  {m.node}.{m.input}  [{m.id}]")
        where = loc.found if loc.present else loc.target
        print(f"  {'':<{width}}  {'in' if loc.present else 'goes to'} {where}")
        if not loc.present and m.kind == "pack" and loc.missing_files and \
                len(loc.missing_files) < len(m.files):
            print(f"  {'':<{width}}  lacks {', '.join(loc.missing_files)}")
    missing = [loc for loc in locs if not loc.present]
    if missing:
        print(f"{len(missing)} missing: `lumosx models get` downloads, verifies and places "
              f"them (`--dry-run` shows what and how much).")
    else:
        print("every file is in place.")
    return EXIT_OK


# -- get ----------------------------------------------------------------------------------------

@dataclass
class Planned:
    """One source file to download for a location."""

    path: str                 # in the repository
    target: str               # where it is placed
    sha256: Optional[str]
    size: Optional[int]
    origin: str = "the manifest"


def staging_dir(loc: Location) -> str:
    """Where a release (``convert``) or a new pack is assembled before it is placed: a hidden
    folder beside the target (same disk, so placing it is a rename)."""
    return os.path.join(os.path.dirname(loc.target), STAGING, loc.model.id)


def _plan(loc: Location, hub: Hub) -> List[Planned]:
    m = loc.model
    if m.kind == "pack":
        # a new pack is assembled aside and renamed into place whole (the node never sees half
        # a pack); files missing from an existing pack folder go straight in, one by one
        folder = loc.target if os.path.isdir(loc.target) else staging_dir(loc)
        return [Planned(f.path, os.path.join(folder, f.name), f.sha256, f.size)
                for f in m.files if f.name in loc.missing_files]
    if m.kind == "file":
        f = m.files[0]
        return [Planned(f.path, loc.target, f.sha256, f.size)]
    staging = staging_dir(loc)
    out = []
    prefix = m.listing.rstrip("/") + "/"
    for item in hub.listing(m.repo, m.listing, m.revision):
        if not item.path.startswith(prefix):
            raise FetchError(f"{m.repo}: the hub lists {item.path!r} outside {prefix}", "mismatch")
        rel = posixpath.relpath(item.path, posixpath.dirname(m.listing.rstrip("/")) or ".")
        parts = rel.split("/")
        if posixpath.isabs(item.path) or ".." in parts or any(p in ("", ".") for p in parts):
            raise FetchError(f"{m.repo}: the hub lists an unsafe path {item.path!r}", "mismatch")
        out.append(Planned(item.path, os.path.join(staging, *parts), item.sha256, item.size,
                           origin=f"the hub's listing of {m.repo}"))
    return out


def _convert_source(folder: str) -> str:
    """The checkpoint inside a downloaded release folder: the folder itself when it is a
    torch-distributed checkpoint, else its one checkpoint file."""
    from ..convert import PICKLE_EXTENSIONS, SAFETENSORS_EXTENSIONS, is_distributed_checkpoint
    if is_distributed_checkpoint(folder):
        return folder
    exts = PICKLE_EXTENSIONS + SAFETENSORS_EXTENSIONS
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                   if f.lower().endswith(exts))
    dcps = sorted({d for d, _, fs in os.walk(folder) if ".metadata" in fs})
    if len(files) == 1 and not dcps:
        return files[0]
    if len(dcps) == 1 and not files:
        return dcps[0]
    found = ", ".join(os.path.relpath(p, folder) for p in files + dcps) or "no checkpoint"
    raise FetchError(f"the release folder {folder} holds {found}: convert the one you want "
                     f"with `python -m lumosx_core.convert SRC DST.safetensors`", "convert")


def _convert(loc: Location, release: str, progress: Progress) -> None:
    from ..convert import CheckpointError, convert
    src = _convert_source(release)
    progress.event(f"  converting {os.path.relpath(src, os.path.dirname(release))} -> "
                   f"{loc.target} (safetensors; nothing in it can run code)")
    try:
        info = convert(src, loc.target)
    except CheckpointError as e:
        raise FetchError(f"{loc.model.name}: conversion failed: {e}. The verified download "
                         f"stays in {release} (run again, or convert it by hand)",
                         "convert") from None
    except OSError as e:
        raise FetchError(f"{loc.model.name}: conversion failed: {e.strerror or e}; the "
                         f"download stays in {release}", "convert") from None
    progress.event(f"  converted: Wan 2.1 T2V, dim {info.dim}, {info.layers} blocks")


def _fetch(loc: Location, hub: Hub, progress: Progress) -> None:
    m = loc.model
    plan = _plan(loc, hub)
    for i, item in enumerate(plan, 1):
        if os.path.isfile(item.target):  # staged and verified by an earlier run
            if item.size is None or os.path.getsize(item.target) == item.size:
                continue
            os.remove(item.target)  # another version of the file: fetch it again
        remote = hub.resolve(m.repo, item.path, m.revision)
        exp = expected(remote, item.sha256, item.size, item.origin)
        label = posixpath.basename(item.path) if len(plan) == 1 else \
            f"{posixpath.basename(item.path)} ({i}/{len(plan)})"
        fetch_file(hub, remote, item.target, exp, progress, label)
        progress.event(f"  verified {posixpath.basename(item.path)}: {human_size(exp.size)}, "
                       f"{'sha256' if exp.sha256 else 'git sha1'} "
                       f"{(exp.sha256 or exp.git_sha1)[:16]}... ({exp.origin})")
    staging = staging_dir(loc)
    if m.kind == "convert":
        release = os.path.join(staging, posixpath.basename(m.listing.rstrip("/")))
        _convert(loc, release, progress)
        shutil.rmtree(staging, ignore_errors=True)
    elif m.kind == "pack" and os.path.isdir(staging):
        os.rename(staging, loc.target)
    try:
        os.rmdir(os.path.dirname(staging))  # the hidden staging folder, when empty
    except OSError:
        pass


def _dry_run(locs: List[Location], hub: Optional[Hub]) -> int:
    total, unknown = 0, False
    for loc in locs:
        m = loc.model
        print(f"would fetch {m.name} ({m.what})\n  from {m.source}, into {loc.target}")
        try:
            plan = _plan(loc, hub) if hub is not None else None
        except FetchError as e:
            print(f"  ({e})")
            plan = None
        if plan is None:
            unknown = True
            if m.kind != "convert":
                for f in m.files:
                    if f.name in loc.missing_files or m.kind == "file":
                        print(f"  {f.path}  {human_size(f.size)}")
                        total += f.size or 0
                        unknown |= f.size is None
            continue
        for item in plan:
            size = item.size
            if size is None and hub is not None:
                try:
                    size = hub.resolve(m.repo, item.path, m.revision).size
                except FetchError as e:
                    print(f"  ({e})")
            have = sum(os.path.getsize(p) for p in partials_of(item.target))
            done = " (already downloaded)" if os.path.isfile(item.target) else (
                f" ({human_size(have)} already downloaded: resumes)" if have else "")
            print(f"  {item.path}  {human_size(size)}{done}")
            if not os.path.isfile(item.target):
                total += max(0, (size or 0) - have)
            unknown |= size is None
        if m.kind == "convert":
            print(f"  then convert it to {m.name} (python -m lumosx_core.convert)")
    print(f"total to download: {human_size(total)}" + (" (some sizes unknown)" if unknown else ""))
    return EXIT_OK


def cmd_get(args) -> int:
    setup = _setup(args)
    if isinstance(setup, int):
        return setup
    folders, locs = setup
    progress = Progress()
    for loc in locs:
        if loc.present:
            print(f"present: {loc.model.name} ({loc.found})")
    todo = [loc for loc in locs if not loc.present]
    if not todo:
        print("nothing to do: every file is in place.")
        return EXIT_OK
    try:
        hub = Hub()
    except FetchError as e:
        print(f"lumosx models get: {e}", file=sys.stderr)
        return EXIT_FAILED
    if args.dry_run:
        return _dry_run(todo, None if hub.offline else hub)
    if hub.offline:
        print("lumosx models get: HF_HUB_OFFLINE is set: nothing can be downloaded. Missing: "
              + ", ".join(loc.model.name for loc in todo), file=sys.stderr)
        return EXIT_FAILED
    print(f"fetching {len(todo)} of {len(locs)} from {hub.endpoint} ({folders.source})")
    failed = []
    try:
        for loc in todo:
            m = loc.model
            print(f"{m.name}: {m.what}\n  from {m.source} -> {loc.target}", flush=True)
            if m.kind == "pack":
                print(f"  licence: {m.licence}", flush=True)
            try:
                _fetch(loc, hub, progress)
            except FetchError as e:
                progress.clear()
                failed.append(loc)
                print(f"error: {e}", file=sys.stderr, flush=True)
                continue
            print(f"  placed {loc.target}", flush=True)
    except KeyboardInterrupt:
        progress.clear()
        print("\ninterrupted: nothing half-done was placed; what was downloaded is kept (as "
              f"*{PARTIAL_SUFFIX} files) and the same command resumes it.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if failed:
        print(f"lumosx models get: {len(failed)} failed: "
              + ", ".join(loc.model.name for loc in failed), file=sys.stderr)
        return EXIT_FAILED
    print("done: every file is in place.")
    return EXIT_OK
