"""The archive folder: where each release's file goes, and writing it safely.

Every path is derived here and checked to stay inside ``<out>/releases``, whatever a slug
or a page says; every write goes to a temporary file that is renamed into place, so a
reader (or a crash) never sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

RELEASES = "releases"
TEMP_PREFIX = ".tmp-"
MAX_SLUG = 150

_UNSAFE = re.compile(r"[^a-z0-9_-]+")


class UnsafePath(ValueError):
    """A computed path would land outside the archive's releases folder."""


def safe_slug(slug: str) -> str:
    """A slug fit for a file name.

    Real slugs are lower-case words joined by hyphens and pass through unchanged. Anything
    else (``..``, ``/``, ``%2F``, NUL, very long) is folded to that alphabet and given a
    short hash of the original, so two hostile slugs cannot collide into one file.
    """
    cleaned = _UNSAFE.sub("-", unquote(slug).lower()).strip("-_")
    if cleaned == slug and 0 < len(slug) <= MAX_SLUG:
        return slug
    digest = hashlib.sha256(slug.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{cleaned[:MAX_SLUG] or 'release'}-{digest}"


def release_path(date: str, slug: str) -> str:
    """``releases/YYYY/MM/YYYY-MM-DD-<slug>.md`` for a release's UTC date and slug."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise UnsafePath(f"not a YYYY-MM-DD date: {date!r}")
    year, month, _ = date.split("-")
    return str(PurePosixPath(RELEASES, year, month, f"{date}-{safe_slug(slug)}.md"))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Store:
    """The files of one archive folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.releases = self.root / RELEASES

    def resolve(self, relative: str) -> Path:
        """The absolute path of an archive-relative path, refusing anything outside releases/."""
        path = (self.root / relative).resolve()
        if self.releases not in path.parents:
            raise UnsafePath(f"refusing to touch a path outside {self.releases}: {relative!r}")
        return path

    def write(self, relative: str, text: str) -> Path:
        """Write atomically: a temporary file in the same folder, fsynced, then renamed."""
        path = self.resolve(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        try:
            with open(fd, "wb") as handle:
                handle.write(text.encode("utf-8", "surrogatepass"))  # as sha256_text hashes it
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def write_many(self, files: list[tuple[str, str]]) -> None:
        """Write several files, each atomically as ``write`` does, durable on return.

        The same steps as ``write`` for every file, but one flush for the lot instead of
        one per file (os.sync): every temporary file is written, then flushed, then renamed
        into place, then the renames are flushed. A crash leaves each file old or new, never
        half written; a rebuild writes thousands of files, and a flush per file would be
        most of its time.
        """
        if len(files) <= 1:
            for relative, text in files:
                self.write(relative, text)
            return
        paths = [self.resolve(relative) for relative, _ in files]  # refuse bad paths first
        temps: list[str] = []
        try:
            for folder in {path.parent for path in paths}:
                folder.mkdir(parents=True, exist_ok=True)
            for path, (_, text) in zip(paths, files):
                fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
                temps.append(tmp)
                with open(fd, "wb") as handle:
                    handle.write(text.encode("utf-8", "surrogatepass"))
            os.sync()
            for tmp, path in zip(temps, paths):
                os.replace(tmp, path)
            os.sync()
        except BaseException:
            for tmp in temps:
                Path(tmp).unlink(missing_ok=True)
            raise

    def read_bytes(self, relative: str) -> bytes | None:
        """The file exactly as stored (no newline translation), or None when missing."""
        try:
            return self.resolve(relative).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, relative: str) -> None:
        self.resolve(relative).unlink(missing_ok=True)

    def files(self) -> list[str]:
        """Every Markdown file under releases/, as archive-relative POSIX paths, sorted."""
        if not self.releases.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in self.releases.rglob("*.md")
            if not path.name.startswith(TEMP_PREFIX)
        )

    def remove_temporary_files(self) -> int:
        """Delete what an interrupted write left behind; returns how many."""
        if not self.releases.is_dir():
            return 0
        leftovers = list(self.releases.rglob(TEMP_PREFIX + "*"))
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)


# Folders of an archive that only beehive writes.
OWN_FOLDERS = (RELEASES, "warc")


def archive_owns(target: str | os.PathLike, out: str | os.PathLike,
                 ledger: str | os.PathLike) -> bool:
    """Would writing ``target`` (an export, a feed) overwrite part of the archive: its
    ledger or a file SQLite or beehive keeps beside it, or anything under releases/ or
    warc/? Symbolic links are followed, and a hard link to the ledger counts as it."""
    from archive.ledger import LEDGER_SIDECARS

    target = Path(target)
    resolved = target.resolve()
    for own in [Path(ledger), *(Path(f"{ledger}{end}") for end in LEDGER_SIDECARS)]:
        if resolved == own.resolve():
            return True
        with contextlib.suppress(OSError):  # either missing: no hard link between them
            if os.path.samefile(target, own):
                return True
    root = Path(out).resolve()
    return any(resolved == root / folder or root / folder in resolved.parents
               for folder in OWN_FOLDERS)


def write_atomically(path: str | os.PathLike, write) -> None:
    """Call ``write(stream)`` on a temporary text file beside ``path``, then rename it into
    place: a reader, or a run that fails half way, never sees half a file, and an old
    file stays whole until the new one is complete."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
