"""Downloading the real MVTec AD, resumably and verified (book chapter 1, "Data"; for Colab and machines online).

:func:`download_mvtec` fetches the official archive, checks its SHA-256 and extracts the requested categories, each
moved into place only when complete.  The archive has moved several times (the official address has answered 404
since late 2025), so its address can be given, as ``url=`` or in the environment variable ``STAINLIB_MVTEC_URL``:
either the whole dataset's archive (4.9 GB) or, with ``{category}`` in it, one archive per category (bottle alone is
about 150 MB).  An address given so is not checked against the official SHA-256 unless ``sha256`` is passed.  When the
server answers 403 or 404, the error names the MVTec AD download page and the folder layout to fill by hand.
"""

from __future__ import annotations

import os
import shutil
import string
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .data import MVTEC_CATEGORIES, DataError
from .files import file_sha256

__all__ = ["MANUAL_HELP", "URL_VARIABLE", "download_mvtec"]

MVTEC_URL = "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/420938113-1629952094/"
MVTEC_ARCHIVE = "mvtec_anomaly_detection.tar.xz"
MVTEC_SHA256 = "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"
URL_VARIABLE = "STAINLIB_MVTEC_URL"
DOWNLOAD_PAGE = "https://www.mvtec.com/company/research/datasets/mvtec-ad/downloads"
MANUAL_HELP = (
    f"Download MVTec AD by hand from {DOWNLOAD_PAGE} (licence CC BY-NC-SA 4.0; one archive per category or the whole "
    "dataset), extract it, and place each category folder under {root}, as {root}/bottle/train/good/*.png, "
    "{root}/bottle/test/<defect>/*.png and {root}/bottle/ground_truth/<defect>/*_mask.png."
)


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Download ``url`` into ``part``, resuming from its current length with an HTTP Range request."""
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status != 206:  # the server ignored the range: start again
            have = 0
        total = response.headers.get("Content-Length")
        total = int(total) + have if total is not None else None
        with (
            open(part, "ab" if have else "wb") as out,
            tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=Path(url).name, disable=not progress
            ) as bar,
        ):
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size != total:
        raise DataError(f"download of {url} is truncated: got {size} of {total} bytes; run again to resume")


def download_mvtec(
    root,
    categories=None,
    url: str | None = None,
    sha256: str | dict | None = "auto",
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download MVTec AD and extract the requested ``categories`` into ``root`` (default: all 15).

    ``url`` (else the environment variable ``STAINLIB_MVTEC_URL``, else the official address) is the whole dataset's
    archive, or one archive per category where it holds ``{category}``.  Each archive is downloaded to
    ``root/.download/`` and resumed if a previous attempt was interrupted.  ``sha256`` is the archive's checksum
    (a dict by category for per-category archives); ``"auto"`` is the official checksum for the official address and
    no check for an address given by argument or environment; ``None`` skips the check.  Each category is extracted
    into a temporary folder and moved into place only when complete, so a failed or corrupted download leaves no
    partial category behind.  Categories already present are skipped.  Without network, or when the address answers
    403 or 404, the error names the download page and the folders to fill by hand.

    Args:
        root: the dataset folder, created if needed.
        categories: MVTec AD category names (default: all 15).
        url, sha256: the archive's address and checksum, as above.
        timeout: seconds to wait for the server at each request.
        progress: show a progress bar.

    Returns:
        ``root``, as a :class:`~pathlib.Path`, with ``<category>/train/good`` for each category.

    Raises:
        ValueError: a category is not a folder name, the address is not a valid template, or ``sha256`` is a dict for a
            single archive.
        DataError: the download failed or is truncated, its checksum differs, or the archives hold no such category.
    """
    root = Path(root)
    categories = list(categories or MVTEC_CATEGORIES)
    unknown = [c for c in categories if not c or "/" in c or c in (".", "..")]
    if unknown:
        raise ValueError(f"category must be a folder name, got {unknown[0]!r}")
    todo = [c for c in categories if not (root / c / "train" / "good").is_dir()]
    if not todo:
        return root
    given = url or os.environ.get(URL_VARIABLE)
    where = "--url" if url else (URL_VARIABLE if given else "the official address")
    url = given or MVTEC_URL + MVTEC_ARCHIVE
    _check_url(url, where)
    if sha256 == "auto":
        sha256 = None if given else MVTEC_SHA256
    cache = root / ".download"
    cache.mkdir(parents=True, exist_ok=True)
    if "{category}" in url:
        for category in todo:
            digest = sha256.get(category) if isinstance(sha256, dict) else sha256
            archive = _download(url.format(category=category), cache, digest, timeout, progress, root)
            _extract(archive, root, [category])
    else:
        if isinstance(sha256, dict):
            raise ValueError("sha256 by category needs a url with {category} in it")
        _extract(_download(url, cache, sha256, timeout, progress, root), root, todo)
    missing = [c for c in todo if not (root / c / "train" / "good").is_dir()]
    if missing:
        raise DataError(f"the downloaded archives hold no category {', '.join(missing)}")
    return root


def _check_url(url: str, where: str) -> None:
    """Refuse an address whose template holds another field than ``{category}``, or that ends in no file name."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(url) if f is not None]
    except ValueError as exc:
        raise ValueError(
            f"the address {url!r} ({where}) is not a valid template: {exc}; write braces as {{{{ }}}}"
        ) from exc
    odd = [f for f in fields if f != "category"]
    if odd:
        raise ValueError(
            f"the address {url!r} ({where}) holds {{{odd[0]}}}; the only field it may hold is {{category}} (write "
            "other braces as {{ and }})"
        )
    name = url.split("?")[0].split("/")[-1]
    if name in ("", ".", ".."):
        raise ValueError(
            f"the address {url!r} ({where}) does not end in an archive's file name (such as bottle.tar.xz)"
        )


def _download(url: str, cache: Path, sha256: str | None, timeout: float, progress: bool, root: Path) -> Path:
    """The archive at ``url`` in ``cache``: fetched (resumed) and checked unless it is there already."""
    archive = cache / Path(url.split("?")[0]).name
    part = archive.with_name(archive.name + ".part")
    if not archive.exists():
        try:
            _fetch(url, part, timeout, progress)
        except urllib.error.HTTPError as exc:
            if exc.code in (403, 404):
                raise DataError(
                    f"{url} answered {exc.code} {exc.reason}: the archive is not (or no longer) there; MVTec AD has "
                    f"moved several times. Find its current address on {DOWNLOAD_PAGE} and pass it as url=... or in "
                    f"the environment variable {URL_VARIABLE} ({{category}} in it fetches one archive per category). "
                    + MANUAL_HELP.format(root=root.resolve())
                ) from exc
            raise DataError(f"cannot download {url}: {exc}. " + MANUAL_HELP.format(root=root.resolve())) from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise DataError(f"cannot download {url}: {exc}. " + MANUAL_HELP.format(root=root.resolve())) from exc
        if sha256 is not None:
            digest = file_sha256(part)
            if digest != sha256:
                part.unlink()
                raise DataError(
                    f"checksum mismatch for {url}: expected sha256 {sha256}, got {digest}; the corrupted "
                    f"file was deleted, run again to download it anew"
                )
        part.rename(archive)
    return archive


def _extract(archive: Path, root: Path, categories: list[str]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        with tarfile.open(archive) as tar:
            members = []
            for m in tar.getmembers():
                parts = Path(m.name).parts
                top = (
                    parts[1]
                    if parts and parts[0] in (".", "mvtec_anomaly_detection") and len(parts) > 1
                    else (parts[0] if parts else "")
                )
                if top in categories and (m.isfile() or m.isdir()):
                    members.append(m)
            tar.extractall(tmp, members=members, filter="data")
        for category in categories:
            found = next(
                (
                    p
                    for p in (tmp / category, tmp / "mvtec_anomaly_detection" / category, tmp / "." / category)
                    if p.is_dir()
                ),
                None,
            )
            if found is not None and (found / "train" / "good").is_dir():
                shutil.move(str(found), str(root / category))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"cannot extract {archive}: {exc}; delete it and run again") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
