"""Claims about stainlib.download: the resumable, verified MVTec AD downloader, against a local server (chapter 2)."""

import hashlib
import io
import os
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_data import make_category, snapshot

from stainlib.data import DataError, MVTecAD
from stainlib.download import download_mvtec
from stainlib.synthetic import make_synthetic


def archive_bytes(tmp_path: Path, names=("synth_weave", "synth_mesh")) -> bytes:
    src = make_synthetic(tmp_path / "src", ["synth_weave", "synth_mesh"], n_train=2, n_test=3, size=32, seed=0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name in names:
            tar.add(src / name, arcname=name)
    return buf.getvalue()


class Server:
    """Serves one archive (or ``routes[file name]``); ``mode`` is ``ok``, ``truncate`` (closes half-way), ``corrupt``
    (flips bytes), ``403`` or ``404``."""

    def __init__(self, payload: bytes):
        self.payload, self.mode, self.ranges, self.routes = payload, "ok", [], {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if server.mode in ("403", "404"):
                    self.send_error(int(server.mode))
                    return
                data = server.routes.get(self.path.rsplit("/", 1)[-1], server.payload)
                if server.mode == "corrupt":
                    data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                start = 0
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "truncate":
                    body = body[: len(body) // 2]
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mvtec.tar.xz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    payload = archive_bytes(tmp_path)
    s = Server(payload)
    s.sha = hashlib.sha256(payload).hexdigest()
    yield s
    s.close()


def test_download_verifies_and_extracts_only_the_requested_categories(server, tmp_path):
    root = download_mvtec(tmp_path / "mvtec", ["synth_mesh"], url=server.url, sha256=server.sha, progress=False)
    assert (root / "synth_mesh" / "train" / "good").is_dir()
    assert not (root / "synth_weave").exists()
    assert len(MVTecAD(root, "synth_mesh", "test", size=32)) == 3
    assert not [p for p in root.iterdir() if p.name.startswith(".extract")]


def test_download_resumes_an_interrupted_file(server, tmp_path):
    root = tmp_path / "mvtec"
    (root / ".download").mkdir(parents=True)
    (root / ".download" / "mvtec.tar.xz.part").write_bytes(server.payload[:1000])
    download_mvtec(root, ["synth_weave"], url=server.url, sha256=server.sha, progress=False)
    assert server.ranges == ["bytes=1000-"]
    assert (root / "synth_weave" / "train" / "good").is_dir()


def test_truncated_download_leaves_no_category_and_resumes_next_time(server, tmp_path):
    root = tmp_path / "mvtec"
    server.mode = "truncate"
    with pytest.raises(DataError, match="truncated"):
        download_mvtec(root, ["synth_weave"], url=server.url, sha256=server.sha, progress=False)
    assert not (root / "synth_weave").exists()
    server.mode = "ok"
    download_mvtec(root, ["synth_weave"], url=server.url, sha256=server.sha, progress=False)
    assert server.ranges[-1] is not None and server.ranges[-1].startswith("bytes=")
    assert (root / "synth_weave" / "train" / "good").is_dir()


def test_corrupted_download_fails_its_checksum_and_leaves_nothing(server, tmp_path):
    root = tmp_path / "mvtec"
    server.mode = "corrupt"
    with pytest.raises(DataError, match="checksum mismatch"):
        download_mvtec(root, ["synth_weave"], url=server.url, sha256=server.sha, progress=False)
    assert not (root / "synth_weave").exists()
    assert not list((root / ".download").iterdir())


def test_no_network_says_where_to_put_the_files_by_hand(tmp_path):
    # A port on 127.0.0.1 where nothing listens: the connection is refused at once.
    with pytest.raises(DataError, match="by hand.*bottle/"):
        download_mvtec(tmp_path, ["bottle"], url="http://127.0.0.1:9/none.tar.xz", progress=False, timeout=5)
    assert not (tmp_path / "bottle").exists()


def test_download_skips_categories_already_present(tmp_path):
    make_category(tmp_path, "bottle")
    before = snapshot(tmp_path)
    assert download_mvtec(tmp_path, ["bottle"], url="http://127.0.0.1:9/none.tar.xz", progress=False) == tmp_path
    assert snapshot(tmp_path) == before
    assert os.listdir(tmp_path) == ["bottle"]


def test_per_category_archives_are_fetched_one_by_one_from_a_url_with_category(server, tmp_path):
    server.routes = {f"{c}.tar.xz": archive_bytes(tmp_path / c, (c,)) for c in ("synth_weave", "synth_mesh")}
    base = server.url.rsplit("/", 1)[0]
    root = download_mvtec(
        tmp_path / "mvtec", ["synth_mesh", "synth_weave"], url=base + "/{category}.tar.xz", progress=False
    )
    assert sorted(p.name for p in (root / ".download").iterdir()) == ["synth_mesh.tar.xz", "synth_weave.tar.xz"]
    assert len(MVTecAD(root, "synth_mesh", "test")) == len(MVTecAD(root, "synth_weave", "test")) > 0


def test_url_from_the_environment_is_used_without_the_official_checksum(server, tmp_path, monkeypatch):
    monkeypatch.setenv("STAINLIB_MVTEC_URL", server.url)
    root = download_mvtec(tmp_path / "mvtec", ["synth_weave"], progress=False)  # no sha256: not checked
    assert (root / "synth_weave" / "train" / "good").is_dir() and server.ranges == [None]
    with pytest.raises(DataError, match="checksum mismatch"):  # a checksum passed with it is checked
        download_mvtec(tmp_path / "other", ["synth_weave"], sha256="0" * 64, progress=False)


@pytest.mark.parametrize("code", ["403", "404"])
def test_a_moved_archive_names_the_download_page_and_the_folders_to_fill(server, tmp_path, code):
    server.mode = code
    with pytest.raises(DataError, match=rf"answered {code}(.|\n)*mvtec-ad/downloads(.|\n)*STAINLIB_MVTEC_URL") as err:
        download_mvtec(tmp_path / "mvtec", ["bottle"], url=server.url, progress=False)
    assert "bottle/train/good" in str(err.value) and not (tmp_path / "mvtec" / "bottle").exists()
