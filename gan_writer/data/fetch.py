"""Find a corpus file locally, or download it into a cache with checksum verification.

Resolution order of :func:`resolve_file` for a relative path such as ``poetry_zh/shi.txt``:

1. ``data_dir`` given by the caller, then ``$GAN_WRITER_DATA``; when that variable is
   unset, ``shared/data`` beside the checkout (``<checkout>/../shared/data``, the folder the
   Makefile and the tests use), so commands typed by hand need no export. Set
   ``GAN_WRITER_DATA=`` (empty) to search no data folder at all.
   These folders are the user's and are *trusted*: files found there are not hashed
   (a user may have edited them on purpose), but a 0-byte file is an error.
2. The cache: ``cache_dir``, else ``$GAN_WRITER_CACHE``, else ``~/.cache/gan_writer``.
   Cached files *are* verified against the expected sha256; a mismatch is an error that
   names the file and both hashes (the file is left in place: delete it to download again).
3. Download: from ``mirror`` / ``$GAN_WRITER_MIRROR`` (a base URL serving the same
   relative layout as the data folder) when set, else from the file's source URL. The
   body is streamed into a temporary file next to the target, hashed, and moved into
   place with ``os.replace`` only when the sha256 matches; on a mismatch the temporary
   file is deleted and :class:`ChecksumError` names the file, the URL and both hashes.
   A source URL may point to a ``.tgz`` archive (``archive_member``): the member with
   that base name is extracted and verified the same way.

Nothing outside the cache is ever written, and nothing in the cache is overwritten
except by an atomic replace of a verified download.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .readers import CorpusError, CorpusFormatError, CorpusNotFoundError

__all__ = ["ChecksumError", "DownloadError", "default_cache_dir", "default_data_dir", "data_dirs", "sha256_file",
           "download", "resolve_file"]

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


class ChecksumError(CorpusError, ValueError):
    """A downloaded or cached file's sha256 differs from the expected one.

    Attributes: ``path`` (the file), ``expected`` and ``actual`` (hex digests).
    """

    def __init__(self, message: str, path: str, expected: str, actual: str):
        super().__init__(message)
        self.path, self.expected, self.actual = path, expected, actual


class DownloadError(CorpusError, OSError):
    """A download failed (network, HTTP status, or missing archive member)."""


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$GAN_WRITER_CACHE``, else ``~/.cache/gan_writer``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("GAN_WRITER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gan_writer"


def default_data_dir() -> Path | None:
    """``shared/data`` beside the checkout that holds this package, if that folder exists.

    The checkout is the folder with ``setup.py`` above ``gan_writer/`` (an editable
    install); an installed wheel has none, and then there is no default folder.
    """
    checkout = Path(__file__).resolve().parents[2]
    folder = checkout.parent / "shared" / "data"
    return folder if (checkout / "setup.py").is_file() and folder.is_dir() else None


def data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """User data folders searched first: ``data_dir``, then ``$GAN_WRITER_DATA``, or when
    that variable is unset :func:`default_data_dir` (an empty value means none)."""
    dirs = [Path(data_dir).expanduser()] if data_dir is not None else []
    env = os.environ.get("GAN_WRITER_DATA")
    if env:
        dirs.append(Path(env).expanduser())
    elif env is None and default_data_dir() is not None:
        dirs.append(default_data_dir())
    return dirs


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _copy_hashing(src, dst) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: src.read(_CHUNK), b""):
        h.update(chunk)
        dst.write(chunk)
    return h.hexdigest()


def _open_url(url: str, timeout: float):
    try:
        return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http/https only)
    except urllib.error.HTTPError as err:
        raise DownloadError(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"download of {url} failed ({getattr(err, 'reason', err)}); two ways out: set "
                            "GAN_WRITER_DATA to a folder that holds the corpora (the project's shared/data, "
                            "found by itself beside the checkout), or connect to the network (or set "
                            "GAN_WRITER_MIRROR to a URL serving that folder)") from err


def download(url: str, target: str | os.PathLike, *, sha256: str | None = None,
             archive_member: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` atomically, verifying ``sha256`` before the final move.

    Args:
        url: http(s) URL (``file:`` URLs work too).
        target: final path; its folder is created. It only ever receives a complete,
            verified file (temporary file in the same folder + ``os.replace``).
        sha256: expected hex digest of the file (of the member for archives); None skips
            verification (a 0-byte result is still an error).
        archive_member: if given, ``url`` is a tar archive (any compression) and the regular
            file whose base name equals this is extracted.
        timeout: socket timeout in seconds.
    Returns:
        ``target`` as a Path.
    Raises:
        DownloadError: network/HTTP failure, member not in the archive, or an empty file.
        ChecksumError: hash mismatch; names the target, the URL and both hashes. No
            temporary file is left behind.
    """
    target = Path(target)
    new_dirs = [d for d in [target.parent, *target.parent.parents] if not d.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    archive_tmp: Path | None = None
    ok = False
    try:
        log.info("downloading %s -> %s", url, target)
        with os.fdopen(fd, "wb") as out:
            if archive_member is None:
                with _open_url(url, timeout) as resp:
                    actual = _copy_hashing(resp, out)
            else:
                afd, aname = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".archive.part",
                                              dir=target.parent)
                archive_tmp = Path(aname)
                with os.fdopen(afd, "wb") as af, _open_url(url, timeout) as resp:
                    shutil.copyfileobj(resp, af, _CHUNK)
                try:
                    with tarfile.open(archive_tmp) as tar:
                        members = [m for m in tar.getmembers()
                                   if m.isfile() and Path(m.name).name == archive_member]
                        if not members:
                            raise DownloadError(f"{url} holds no file named {archive_member!r}")
                        with tar.extractfile(members[0]) as src:
                            actual = _copy_hashing(src, out)
                except tarfile.TarError as err:
                    raise DownloadError(f"{url} is not a readable tar archive ({err})") from err
        if sha256 is not None and actual != sha256.lower():
            raise ChecksumError(
                f"checksum mismatch for {target} downloaded from {url}: expected sha256 {sha256}, "
                f"got {actual}. The download was discarded; the source or mirror serves a "
                "different file (retry, or fix GAN_WRITER_MIRROR / the registry entry).",
                str(target), sha256, actual)
        if tmp.stat().st_size == 0:
            raise DownloadError(f"{url} returned an empty file for {target}")
        os.replace(tmp, target)
        ok = True
        return target
    finally:
        for leftover in (tmp, archive_tmp):
            if leftover is not None:
                leftover.unlink(missing_ok=True)
        for d in new_dirs if not ok else ():  # folders this failed call created, innermost first
            try:
                d.rmdir()
            except OSError:
                break


def _check_nonempty(path: Path) -> Path:
    if path.stat().st_size == 0:
        raise CorpusFormatError(f"{path} is empty (0 bytes): replace it with the real file, or "
                                "delete it so the corpus is fetched from the cache or downloaded")
    return path


def resolve_file(relative_path: str, *, data_dir: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None, url: str | None = None,
                 sha256: str | None = None, mirror: str | None = None,
                 archive_member: str | None = None, timeout: float = 60.0) -> Path:
    """Find ``relative_path`` (a data-folder path, e.g. ``"poetry_zh/shi.txt"``), downloading it
    into the cache if needed. See the module docstring for the order and what is verified.

    Args:
        relative_path: path relative to a data folder (``/``-separated).
        data_dir: user folder searched first; ``$GAN_WRITER_DATA`` is searched next.
        cache_dir: cache folder (default ``$GAN_WRITER_CACHE`` or ``~/.cache/gan_writer``).
        url: source URL to download from when no local copy exists.
        sha256: expected hex digest; verifies cached files and downloads.
        mirror: base URL with the data-folder layout (default ``$GAN_WRITER_MIRROR``);
            when set it is used instead of ``url`` (and ``archive_member`` is ignored).
        archive_member: see :func:`download`.
        timeout: download socket timeout in seconds.
    Returns:
        Path of an existing, non-empty file.
    Raises:
        CorpusNotFoundError: no local copy and nothing to download from (says where it looked
            and what to set).
        CorpusFormatError: a 0-byte file in a data folder.
        ChecksumError: a cached file or a download has the wrong sha256.
        DownloadError: the download failed.
    """
    parts = relative_path.split("/")
    if not relative_path or relative_path.startswith("/") or ".." in parts or "" in parts:
        raise ValueError(f"relative_path must be a relative '/'-separated path without '..', got {relative_path!r}")
    rel = Path(*parts)
    looked = []
    for root in data_dirs(data_dir):
        candidate = root / rel
        if candidate.is_file():
            return _check_nonempty(candidate)
        looked.append(str(candidate))
    cached = default_cache_dir(cache_dir) / rel
    if cached.is_file():
        if sha256 is not None:
            actual = sha256_file(cached)
            if actual != sha256.lower():
                raise ChecksumError(
                    f"checksum mismatch for cached file {cached}: expected sha256 {sha256}, got "
                    f"{actual}. Delete the file to download it again, or put the right file in "
                    "GAN_WRITER_DATA.", str(cached), sha256, actual)
        return _check_nonempty(cached)
    looked.append(str(cached))
    mirror = mirror if mirror is not None else os.environ.get("GAN_WRITER_MIRROR") or None
    if mirror:
        url = mirror.rstrip("/") + "/" + urllib.parse.quote(relative_path)
        archive_member = None
    if not url:
        raise CorpusNotFoundError(
            f"{relative_path} not found (looked in: {', '.join(looked)}) and it has no download "
            "source. Set GAN_WRITER_DATA (or pass data_dir=) to a folder holding it, or set "
            "GAN_WRITER_MIRROR to a URL serving that folder.")
    return download(url, cached, sha256=sha256, archive_member=archive_member, timeout=timeout)
