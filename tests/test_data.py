"""Claims about stainlib.data: the MVTec AD loader, the synthetic dataset and the downloader (book chapter 2)."""

import hashlib
import io
import os
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stainlib.data import (
    SYNTHETIC_CATEGORIES,
    SYNTHETIC_DEFECTS,
    DataError,
    MVTecAD,
    download_mvtec,
    make_synthetic,
    synthetic_sample,
)
from stainlib.noise import CORRUPTIONS

SIZE, N_TRAIN, N_TEST = 64, 10, 9


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic(
        tmp_path_factory.mktemp("synth"), ["weave", "cap"], n_train=N_TRAIN, n_test=N_TEST, size=SIZE, seed=3
    )


def snapshot(root: Path):
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_loader_reads_the_synthetic_set_with_the_right_counts_labels_and_masks(synth):
    before = snapshot(synth)
    test = MVTecAD(synth, "weave", "test", size=SIZE)
    assert len(test) == N_TEST
    labels = [test[i]["gt_label"] for i in range(len(test))]
    assert labels.count(0) == N_TEST // 3
    for i in range(len(test)):
        item = test[i]
        assert item["image"].shape == (1, SIZE, SIZE) and item["gt_mask"].shape == (1, SIZE, SIZE)
        assert item["image"].dtype == torch.float32 and 0 <= item["image"].min() and item["image"].max() <= 1
        assert set(torch.unique(item["gt_mask"]).tolist()) <= {0.0, 1.0}
        assert (item["gt_mask"].sum() > 0) == bool(item["gt_label"])
        assert (item["defect_type"] == "good") == (item["gt_label"] == 0)
    assert set(test.defect_types) == {"good", *SYNTHETIC_DEFECTS["weave"]}
    assert snapshot(synth) == before  # the loader writes nothing into the dataset folder


def test_synthetic_defect_pixels_lie_inside_their_mask():
    for category in SYNTHETIC_CATEGORIES:
        clean, _ = synthetic_sample(category, 11, 128)
        for defect in SYNTHETIC_DEFECTS[category]:
            img, mask = synthetic_sample(category, 11, 128, defect)
            diff = np.abs(img.astype(int) - clean.astype(int)).max(-1)
            assert mask.sum() > 10, (category, defect)
            assert (diff[~mask] == 0).all(), (category, defect)  # nothing changed outside the mask
            assert diff[mask].mean() > 8, (category, defect)  # and the mask covers a visible change


def test_synthetic_defects_are_not_training_corruption_models():
    for defects in SYNTHETIC_DEFECTS.values():
        assert 2 <= len(defects) <= 4
        assert not set(defects) & set(CORRUPTIONS) and "stain" not in defects
    assert len(SYNTHETIC_CATEGORIES) >= 5


def test_synthetic_generation_is_deterministic_and_seeded(tmp_path):
    a = make_synthetic(tmp_path / "a", ["mesh"], n_train=3, n_test=3, size=48, seed=1)
    b = make_synthetic(tmp_path / "b", ["mesh"], n_train=3, n_test=3, size=48, seed=1)
    c = make_synthetic(tmp_path / "c", ["mesh"], n_train=3, n_test=3, size=48, seed=2)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)


def test_synthetic_images_vary_between_samples():
    first, _ = synthetic_sample("weave", 1, 64)
    second, _ = synthetic_sample("weave", 2, 64)
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 5


def test_val_is_a_seeded_20_percent_of_train_good_disjoint_from_train(synth):
    train = MVTecAD(synth, "cap", "train", size=SIZE)
    val = MVTecAD(synth, "cap", "val", size=SIZE)
    again = MVTecAD(synth, "cap", "val", size=SIZE)
    other = MVTecAD(synth, "cap", "val", size=SIZE, seed=5)
    t = {p for p, _, _ in train.samples}
    v = {p for p, _, _ in val.samples}
    assert len(v) == round(0.2 * N_TRAIN) and len(t) == N_TRAIN - len(v)
    assert not t & v and len(t | v) == N_TRAIN
    assert [p for p, _, _ in again.samples] == [p for p, _, _ in val.samples]
    assert {p for p, _, _ in other.samples} != v


def test_rgb_gives_three_channels_and_gray_one_and_size_is_applied(synth):
    rgb = MVTecAD(synth, "cap", "test", size=32, color="rgb")[0]["image"]
    gray = MVTecAD(synth, "cap", "test", size=32, color="gray")[0]["image"]
    assert rgb.shape == (3, 32, 32) and gray.shape == (1, 32, 32)


def test_grayscale_files_are_expanded_for_rgb(tmp_path):
    make_category(tmp_path, mode="L")
    item = MVTecAD(tmp_path, "toy", "test", size=32, color="rgb")[0]
    assert item["image"].shape == (3, 32, 32)
    assert torch.equal(item["image"][0], item["image"][1])


def make_category(root: Path, name="toy", n_good=5, mode="RGB", size=40):
    rng = np.random.default_rng(0)

    def save(path, channels=3):
        path.parent.mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 255, (size, size, channels) if channels == 3 else (size, size), dtype=np.uint8)
        Image.fromarray(arr).convert(mode).save(path)

    for i in range(n_good):
        save(root / name / "train" / "good" / f"{i:03d}.png")
    save(root / name / "test" / "good" / "000.png")
    save(root / name / "test" / "crack" / "000.png")
    mask = np.zeros((size, size), np.uint8)
    mask[5:10, 5:10] = 255
    (root / name / "ground_truth" / "crack").mkdir(parents=True)
    Image.fromarray(mask).save(root / name / "ground_truth" / "crack" / "000_mask.png")
    return root / name


def test_non_image_files_are_ignored(tmp_path):
    cat = make_category(tmp_path)
    (cat / "license.txt").write_text("CC BY-NC-SA")
    (cat / "train" / "good" / ".DS_Store").write_bytes(b"\0\1")
    (cat / "test" / "crack" / "notes.txt").write_text("x")
    assert len(MVTecAD(tmp_path, "toy", "train")) + len(MVTecAD(tmp_path, "toy", "val")) == 5
    assert len(MVTecAD(tmp_path, "toy", "test")) == 2


def test_missing_category_lists_the_categories_found(tmp_path):
    make_category(tmp_path, "toy")
    make_category(tmp_path, "other")
    with pytest.raises(DataError, match="'bottle' not found.*other, toy"):
        MVTecAD(tmp_path, "bottle")


def test_defect_image_without_mask_names_the_expected_mask(tmp_path):
    cat = make_category(tmp_path)
    (cat / "ground_truth" / "crack" / "000_mask.png").unlink()
    with pytest.raises(DataError, match="000.png has no mask.*000_mask.png"):
        MVTecAD(tmp_path, "toy", "test")


def test_mask_without_image_names_the_mask(tmp_path):
    cat = make_category(tmp_path)
    Image.new("L", (40, 40)).save(cat / "ground_truth" / "crack" / "001_mask.png")
    with pytest.raises(DataError, match="001_mask.png has no image"):
        MVTecAD(tmp_path, "toy", "test")


def test_truncated_image_names_the_file(tmp_path):
    cat = make_category(tmp_path)
    path = cat / "train" / "good" / "002.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="002.png"):
        for split in ("train", "val"):
            ds = MVTecAD(tmp_path, "toy", split)
            for i in range(len(ds)):
                ds[i]


def test_unreadable_image_names_the_file(tmp_path):
    cat = make_category(tmp_path)
    (cat / "test" / "crack" / "000.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="cannot read image .*000.png"):
        MVTecAD(tmp_path, "toy", "test")


def test_mask_of_another_size_than_its_image_is_refused(tmp_path):
    cat = make_category(tmp_path)
    Image.new("L", (20, 20)).save(cat / "ground_truth" / "crack" / "000_mask.png")
    with pytest.raises(DataError, match="000_mask.png is \\(20, 20\\) but its image"):
        MVTecAD(tmp_path, "toy", "test")


def test_empty_split_names_the_folder(tmp_path):
    cat = make_category(tmp_path, n_good=0)
    (cat / "train" / "good").mkdir(parents=True)
    with pytest.raises(DataError, match="split 'train' of .*toy is empty"):
        MVTecAD(tmp_path, "toy", "train")
    assert cat.exists()


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mvtec_ad"


@pytest.mark.mvtec
@pytest.mark.skipif(not (SHARED / "bottle").is_dir(), reason="real MVTec AD bottle is not beside the checkout")
def test_real_mvtec_bottle_has_the_published_counts():
    train, val = MVTecAD(SHARED, "bottle", "train"), MVTecAD(SHARED, "bottle", "val")
    test = MVTecAD(SHARED, "bottle", "test")
    assert (len(train), len(val), len(test)) == (167, 42, 83)
    assert sum(1 for _, m, _ in test.samples if m is None) == 20
    assert sum(1 for _, m, _ in test.samples if m is not None) == 63
    item = test[len(test) - 1]
    assert item["image"].shape == (1, 256, 256)


# ---- downloader, against a local HTTP server on 127.0.0.1 ----------------------------------------------------------


def archive_bytes(tmp_path: Path) -> bytes:
    src = make_synthetic(tmp_path / "src", ["weave", "mesh"], n_train=2, n_test=3, size=32, seed=0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name in ("weave", "mesh"):
            tar.add(src / name, arcname=name)
    return buf.getvalue()


class Server:
    """Serves one archive; ``mode`` is ``ok``, ``truncate`` (closes half-way) or ``corrupt`` (flips bytes)."""

    def __init__(self, payload: bytes):
        self.payload, self.mode, self.ranges = payload, "ok", []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = server.payload
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
    root = download_mvtec(tmp_path / "mvtec", ["mesh"], url=server.url, sha256=server.sha, progress=False)
    assert (root / "mesh" / "train" / "good").is_dir()
    assert not (root / "weave").exists()
    assert len(MVTecAD(root, "mesh", "test", size=32)) == 3
    assert not [p for p in root.iterdir() if p.name.startswith(".extract")]


def test_download_resumes_an_interrupted_file(server, tmp_path):
    root = tmp_path / "mvtec"
    (root / ".download").mkdir(parents=True)
    (root / ".download" / "mvtec.tar.xz.part").write_bytes(server.payload[:1000])
    download_mvtec(root, ["weave"], url=server.url, sha256=server.sha, progress=False)
    assert server.ranges == ["bytes=1000-"]
    assert (root / "weave" / "train" / "good").is_dir()


def test_truncated_download_leaves_no_category_and_resumes_next_time(server, tmp_path):
    root = tmp_path / "mvtec"
    server.mode = "truncate"
    with pytest.raises(DataError, match="truncated"):
        download_mvtec(root, ["weave"], url=server.url, sha256=server.sha, progress=False)
    assert not (root / "weave").exists()
    server.mode = "ok"
    download_mvtec(root, ["weave"], url=server.url, sha256=server.sha, progress=False)
    assert server.ranges[-1] is not None and server.ranges[-1].startswith("bytes=")
    assert (root / "weave" / "train" / "good").is_dir()


def test_corrupted_download_fails_its_checksum_and_leaves_nothing(server, tmp_path):
    root = tmp_path / "mvtec"
    server.mode = "corrupt"
    with pytest.raises(DataError, match="checksum mismatch"):
        download_mvtec(root, ["weave"], url=server.url, sha256=server.sha, progress=False)
    assert not (root / "weave").exists()
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
