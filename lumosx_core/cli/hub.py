"""Fetching files from a model hub for ``lumosx models get``: the Hugging Face hub protocol
through ``huggingface_hub``, resumable, and verified before a file is placed.

What ``huggingface_hub`` does here (what ``hf_hub_download`` does too): ``HEAD
<endpoint>/<repo>/resolve/<revision>/<path>`` (following redirects on the hub, not to a
storage host) gives the commit (``X-Repo-Commit``), the file's size and hash (``X-Linked-Size``
/ ``X-Linked-Etag`` for a file in LFS storage: its sha256; else ``ETag``: the git blob sha1) and
where the bytes are (``Location``); ``GET`` of that address (with ``Range: bytes=N-`` to resume)
streams them; ``GET <endpoint>/api/models/<repo>/tree/<revision>/<folder>?recursive=True``
lists a folder with each file's size and LFS sha256. ``HF_ENDPOINT`` (a mirror, or a test
server), ``HF_TOKEN`` (or ``huggingface-cli login``) and ``HF_HUB_OFFLINE`` are honoured as
everywhere else; the token never goes to a storage host.

What this module adds, because ``hf_hub_download`` does not do it: the bytes go to a temporary
name in the target folder (``.<name>.<sha256 prefix>.lumosx-partial``) that an interrupted run
leaves for the next to resume; the file is renamed into place only when its size and sha256
(the one the manifest pins, and the one the hub publishes: both when both exist, and they must
agree) match; a mismatch deletes it. Disk-full and permission errors delete the partial file
and say what to do. Nothing downloaded is ever executed or unpickled here.
"""
from __future__ import annotations

import errno
import glob
import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from typing import List, Optional
from urllib.parse import urlsplit

from .progress import Progress, Transfer, human_size

PARTIAL_SUFFIX = ".lumosx-partial"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA1 = re.compile(r"[0-9a-f]{40}")
CHUNK = 1 << 20


class FetchError(Exception):
    """A download that failed, with a message that says what happened and what to do.
    ``kind``: ``notfound``, ``auth``, ``network``, ``offline``, ``mismatch``, ``disk``,
    ``permission``, ``convert``."""

    def __init__(self, message: str, kind: str = "failed"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Remote:
    """What the hub says about one file."""

    repo: str
    path: str
    revision: str
    url: str                 # where to GET the bytes (the hub's redirect target)
    headers: dict            # request headers for ``url`` (no token off the hub)
    commit: Optional[str]
    size: Optional[int]
    sha256: Optional[str]    # the LFS sha256 the hub publishes
    git_sha1: Optional[str]  # a file kept in git (not LFS): its blob sha1


@dataclass(frozen=True)
class Listed:
    """One file of a listed repository folder."""

    path: str
    size: Optional[int]
    sha256: Optional[str]
    git_sha1: Optional[str]


def _origin(url: str) -> str:
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}".lower()


def _errors():
    from huggingface_hub import errors
    names = ("RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError",
             "RemoteEntryNotFoundError", "EntryNotFoundError", "OfflineModeIsEnabled",
             "HfHubHTTPError")
    return {n: getattr(errors, n, ()) for n in names}


class Hub:
    """A model hub (``HF_ENDPOINT``, default huggingface.co) reached through
    ``huggingface_hub``. ``endpoint`` / ``token`` override the environment."""

    def __init__(self, endpoint: Optional[str] = None, token=None):
        try:
            from huggingface_hub import constants
            from huggingface_hub.utils import disable_progress_bars
        except ImportError:
            raise FetchError("downloading needs huggingface_hub: pip install huggingface_hub "
                             "(it is in the pack's requirements.txt)", "network") from None
        disable_progress_bars()  # ours show bytes, rate and time left per file
        self.endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
        self.token = token
        self._commits = {}  # repo -> commit: one run reads one commit of each repository

    @property
    def offline(self) -> bool:
        from huggingface_hub import constants
        check = getattr(constants, "is_offline_mode", None)
        return bool(check() if callable(check) else constants.HF_HUB_OFFLINE)

    def _revision(self, repo: str, revision: str) -> str:
        return self._commits.get(repo, revision)

    def _failed(self, e: BaseException, what: str) -> FetchError:
        """The user's message for an exception of huggingface_hub / the network."""
        err = _errors()
        endpoint = self.endpoint
        if err["OfflineModeIsEnabled"] and isinstance(e, err["OfflineModeIsEnabled"]):
            return FetchError(f"{what}: HF_HUB_OFFLINE is set, nothing can be downloaded", "offline")
        if err["GatedRepoError"] and isinstance(e, err["GatedRepoError"]):
            return FetchError(f"{what}: the repository is gated: accept its terms on "
                              f"{endpoint} and set HF_TOKEN (or `huggingface-cli login`)", "auth")
        if err["RepositoryNotFoundError"] and isinstance(e, err["RepositoryNotFoundError"]):
            return FetchError(f"{what}: repository not found on {endpoint} (or it needs a "
                              f"token: set HF_TOKEN)", "notfound")
        if err["RevisionNotFoundError"] and isinstance(e, err["RevisionNotFoundError"]):
            return FetchError(f"{what}: revision not found on {endpoint}", "notfound")
        for name in ("RemoteEntryNotFoundError", "EntryNotFoundError"):
            if err[name] and isinstance(e, err[name]):
                return FetchError(f"{what}: no such file on {endpoint} (404)", "notfound")
        if err["HfHubHTTPError"] and isinstance(e, err["HfHubHTTPError"]):
            status = getattr(getattr(e, "response", None), "status_code", None)
            if status == 404:
                return FetchError(f"{what}: not found on {endpoint} (404)", "notfound")
            if status in (401, 403):
                return FetchError(f"{what}: access denied ({status}): set HF_TOKEN to a token "
                                  f"that may read it", "auth")
            return FetchError(f"{what}: the hub answered {status}: {str(e).splitlines()[0]}",
                              "network")
        first = (str(e).strip().splitlines() or [""])[0]
        return FetchError(f"{what}: cannot reach {endpoint} ({type(e).__name__}: {first}). "
                          f"Check the connection, or set HF_ENDPOINT to a mirror; run again to "
                          f"resume", "network")

    # -- metadata ---------------------------------------------------------------------------
    def resolve(self, repo: str, path: str, revision: str = "main") -> Remote:
        """``HEAD .../resolve/...``: where the file's bytes are, its size and hash."""
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        from huggingface_hub.utils import build_hf_headers
        rev = self._revision(repo, revision)
        what = f"{repo}/{path}"
        try:
            url = hf_hub_url(repo, path, revision=rev, endpoint=self.endpoint)
            meta = get_hf_file_metadata(url, token=self.token)
        except Exception as e:  # noqa: BLE001 -- every failure becomes a clear message
            raise self._failed(e, what) from None
        if meta.commit_hash:
            self._commits.setdefault(repo, meta.commit_hash)
        etag = (meta.etag or "").lower()
        headers = build_hf_headers(token=self.token)
        location = meta.location or url
        if _origin(location) != _origin(self.endpoint):
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        return Remote(repo=repo, path=path, revision=rev, url=location, headers=headers,
                      commit=meta.commit_hash, size=meta.size,
                      sha256=etag if _SHA256.fullmatch(etag) else None,
                      git_sha1=etag if _SHA1.fullmatch(etag) else None)

    def listing(self, repo: str, folder: str, revision: str = "main") -> List[Listed]:
        """Every file under ``folder`` of the repository, with its size and hash."""
        from huggingface_hub import HfApi
        rev = self._revision(repo, revision)
        try:
            entries = list(HfApi(endpoint=self.endpoint, token=self.token).list_repo_tree(
                repo, path_in_repo=folder, recursive=True, revision=rev))
        except Exception as e:  # noqa: BLE001
            raise self._failed(e, f"{repo}/{folder}/") from None
        out = []
        for ent in entries:
            if not hasattr(ent, "blob_id"):
                continue  # a folder
            lfs = ent.lfs  # {size, sha256, ...} for a file in LFS storage, else None
            if lfs:
                out.append(Listed(ent.path, int(lfs["size"]), str(lfs["sha256"]).lower(), None))
            else:
                blob = (ent.blob_id or "").lower()
                out.append(Listed(ent.path, ent.size, None,
                                  blob if _SHA1.fullmatch(blob) else None))
        if not out:
            raise FetchError(f"{repo}/{folder}/: the hub lists no files there", "notfound")
        return out

    # -- transfer ---------------------------------------------------------------------------
    def transfer(self, remote: Remote, partial: str, size: Optional[int],
                 progress: Progress, label: str) -> None:
        """Append ``remote``'s bytes to ``partial`` from its current length (``Range``);
        the file never grows past ``size``."""
        from huggingface_hub.file_download import http_get
        have = os.path.getsize(partial) if os.path.exists(partial) else 0
        if size is not None and have == size:
            return  # complete already (e.g. interrupted while it was being checked)
        bar = Transfer(progress, label, size, start=have)
        with open(partial, "ab") as f:
            sink = _Sink(f, bar, size, partial)
            try:
                http_get(remote.url, sink, resume_size=have, headers=dict(remote.headers),
                         displayed_filename=label)
            except (KeyboardInterrupt, _TooLong):
                raise
            except OSError as e:
                if _is_local(e):
                    raise  # the caller says what to do (disk full, permission)
                raise self._failed(e, f"{remote.repo}/{remote.path}") from None
            except Exception as e:  # noqa: BLE001 -- the network library's own errors
                raise self._failed(e, f"{remote.repo}/{remote.path}") from None
            f.flush()
            os.fsync(f.fileno())
        bar.update(os.path.getsize(partial), force=True)
        progress.clear()


#: errors of the local file system (not of the connection)
LOCAL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EACCES, errno.EPERM,
                errno.EROFS, errno.EIO, errno.EFBIG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR}


def _is_local(e: OSError) -> bool:
    http = _errors()["HfHubHTTPError"]
    return e.errno in LOCAL_ERRNOS and not isinstance(e, ConnectionError) \
        and not (http and isinstance(e, http))


class _TooLong(Exception):
    """The server sent more bytes than the file has."""


class _Sink:
    """The file ``http_get`` writes to: counts bytes for the bar, refuses to grow past the
    expected size."""

    def __init__(self, f, bar: Transfer, size: Optional[int], path: str):
        self.f, self.bar, self.size, self.path = f, bar, size, path

    def write(self, data: bytes) -> int:
        pos = self.f.tell()
        if self.size is not None and pos + len(data) > self.size:
            raise _TooLong(f"{self.path}: more than the {self.size} bytes the hub announced")
        n = self.f.write(data)
        self.bar.update(pos + len(data))
        return n

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, *args) -> int:
        return self.f.seek(*args)

    def truncate(self, *args) -> int:
        n = self.f.truncate(*args)
        self.f.seek(0, os.SEEK_END)  # appends go on from the (new) end
        self.bar.start = self.bar.done = self.f.tell()
        return n

    def flush(self) -> None:
        self.f.flush()


# -- verifying and placing ----------------------------------------------------------------------

def file_digest(path: str, algo: str, progress: Optional[Progress] = None,
                label: str = "") -> str:
    """sha256 (``sha256``) or git blob sha1 (``git``) of a file, with a bar for big files."""
    size = os.path.getsize(path)
    if algo == "git":
        h = hashlib.sha1(b"blob %d\0" % size)
    else:
        h = hashlib.sha256()
    bar = Transfer(progress, label, size, verb="checking ") if progress and size > 64 << 20 \
        else None
    done = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK * 8), b""):
            h.update(chunk)
            done += len(chunk)
            if bar:
                bar.update(done)
    if progress:
        progress.clear()
    return h.hexdigest()


@dataclass(frozen=True)
class Expected:
    """What a downloaded file must be: its size and hashes from the manifest and the hub."""

    size: Optional[int]
    sha256: Optional[str]
    git_sha1: Optional[str]
    origin: str   # where the sha256 comes from, for messages

    @property
    def tag(self) -> str:
        return (self.sha256 or self.git_sha1 or "unknown")[:16]


def expected(remote: Remote, pinned_sha256: Optional[str], pinned_size: Optional[int],
             pin_origin: str = "the manifest") -> Expected:
    """Combine the manifest's pins with what the hub publishes; refuse before any download
    when they disagree or when nothing can verify the file."""
    what = f"{remote.repo}/{remote.path}"
    if pinned_sha256 and remote.sha256 and pinned_sha256 != remote.sha256:
        raise FetchError(f"{what}: the hub now publishes sha256 {remote.sha256}, not the "
                         f"{pinned_sha256} that {pin_origin} pins: not downloaded (the file "
                         f"changed upstream; update the pack or report it)", "mismatch")
    if pinned_size is not None and remote.size is not None and pinned_size != remote.size:
        raise FetchError(f"{what}: the hub announces {remote.size} bytes, {pin_origin} pins "
                         f"{pinned_size}: not downloaded", "mismatch")
    sha = pinned_sha256 or remote.sha256
    if not sha and not remote.git_sha1:
        raise FetchError(f"{what}: neither the manifest nor the hub publishes a checksum for "
                         f"it, so it cannot be verified: not downloaded", "mismatch")
    origin = pin_origin if pinned_sha256 else f"the hub ({remote.repo})"
    return Expected(size=pinned_size if pinned_size is not None else remote.size,
                    sha256=sha, git_sha1=None if sha else remote.git_sha1, origin=origin)


def partial_path(target: str, exp: Expected) -> str:
    folder, name = os.path.split(target)
    return os.path.join(folder, f".{name}.{exp.tag}{PARTIAL_SUFFIX}")


def partials_of(target: str) -> List[str]:
    folder, name = os.path.split(target)
    return glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*{PARTIAL_SUFFIX}"))


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _local_error(e: OSError, folder: str, partial: str) -> FetchError:
    """Disk full / permission / other file errors: the partial file is deleted."""
    _remove(partial)
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        free = shutil.disk_usage(folder).free if os.path.isdir(folder) else None
        return FetchError(f"disk full while writing in {folder} ({human_size(free)} free): the "
                          f"partial file was deleted, nothing was placed. Free space (or point "
                          f"ComfyUI's extra_model_paths.yaml at a bigger disk) and run again",
                          "disk")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return FetchError(f"cannot write in {folder}: {e.strerror or 'permission denied'}. "
                          f"Nothing was placed; fix the folder's permissions or run as the "
                          f"user that owns ComfyUI's models", "permission")
    return FetchError(f"cannot write in {folder}: {e.strerror or e}. Nothing was placed", "disk")


def fetch_file(hub: Hub, remote: Remote, target: str, exp: Expected, progress: Progress,
               label: Optional[str] = None) -> str:
    """Download ``remote`` to a temporary name beside ``target`` (resuming what an earlier
    run left), verify it against ``exp`` and rename it to ``target``. Returns ``target``."""
    folder = os.path.dirname(os.path.abspath(target))
    label = label or os.path.basename(target)
    partial = partial_path(target, exp)
    try:
        os.makedirs(folder, exist_ok=True)
        for stale in partials_of(target):  # left by a run for another version of the file
            if stale != partial:
                _remove(stale)
        have = os.path.getsize(partial) if os.path.exists(partial) else 0
        if exp.size is not None and have > exp.size:
            _remove(partial)
            have = 0
        if exp.size is not None:
            free = shutil.disk_usage(folder).free
            if exp.size - have > free:
                raise FetchError(f"{label}: needs {human_size(exp.size - have)} in {folder}, "
                                 f"only {human_size(free)} free: nothing was downloaded. Free "
                                 f"space and run again", "disk")
        if have:
            progress.event(f"  resuming {label} at {human_size(have)}")
        hub.transfer(remote, partial, exp.size, progress, label)
    except _TooLong as e:
        _remove(partial)
        raise FetchError(f"{label}: {e}: deleted, nothing was placed", "mismatch") from None
    except FetchError:
        raise
    except OSError as e:
        raise _local_error(e, folder, partial) from None
    verify(partial, exp, progress, label)
    try:
        os.replace(partial, target)
    except OSError as e:
        raise _local_error(e, folder, partial) from None
    return target


def verify(path: str, exp: Expected, progress: Optional[Progress], label: str) -> None:
    """Size and hash of a downloaded file; a mismatch deletes it."""
    size = os.path.getsize(path)
    if exp.size is not None and size != exp.size:
        _remove(path)
        raise FetchError(f"{label}: downloaded {size} bytes, expected {exp.size} (truncated or "
                         f"wrong file): deleted, nothing was placed. Run again", "mismatch")
    if exp.sha256:
        actual = file_digest(path, "sha256", progress, label)
        want, algo = exp.sha256, "sha256"
    else:
        actual = file_digest(path, "git", progress, label)
        want, algo = exp.git_sha1, "git blob sha1"
    if actual != want:
        _remove(path)
        raise FetchError(f"{label}: {algo} {actual} does not match {want} ({exp.origin}): "
                         f"the download is corrupt or not the published file; deleted, nothing "
                         f"was placed", "mismatch")
