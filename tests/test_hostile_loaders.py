"""Hostile files given to the loaders (bridge.load / load_module / read_checkpoint,
the image readers, read_idx / load_mnist): each is read as what it is, or
refused with one line that starts with the file, before it can block, eat
memory or run code.
"""
import gzip
import io
import os
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

import bridge
import npcnn.weight_files
import npcnn
from bridge.image_read import MAX_ASPECT, read_image
from bridge.images import load_digit_image, load_imagenet_image
from npcnn.atomic import atomic_write_text
from npcnn.data import DataError, read_idx, write_idx
from npcnn.data.files import readable_file


def one_line_naming(err, path):
    text = str(err.value)
    assert "\n" not in text and str(path) in text, text
    return text


@pytest.fixture(scope="module")
def lenet5_pt(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "lenet5.pt"
    bridge.save_checkpoint(path, bridge.torch_model("lenet5"), dataset="mnist")
    return path


class unblocking:
    """If the code under test opens ``fifo`` for reading (and so blocks until
    a writer comes), a writer comes after ``after`` seconds and closes at
    once: the test then fails on a wrong message instead of hanging."""

    def __init__(self, fifo, after=5.0):
        self.fifo, self.after, self.done = fifo, after, threading.Event()

    def __enter__(self):
        threading.Thread(target=self._writer, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.done.set()

    def _writer(self):
        deadline = time.monotonic() + self.after
        while not self.done.wait(0.05):
            if time.monotonic() < deadline:
                continue
            try:     # succeeds only when a reader is blocked on the FIFO
                os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass


# ---------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("loader", [bridge.load, bridge.load_module, bridge.read_checkpoint])
def test_non_finite_weights_are_refused_by_every_loader(value, loader, lenet5_pt, tmp_path):
    state = torch.load(lenet5_pt, weights_only=True)
    state["state_dict"]["conv_2.bias"][5] = value
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        loader(path)
    assert "conv_2.bias holds non-finite values" in one_line_naming(err, path)


def test_a_nan_checkpoint_is_never_written(tmp_path):
    module = bridge.torch_model("lenet5")
    with torch.no_grad():
        module[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        bridge.save_checkpoint(tmp_path / "m.pt", module)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("meta, kind", [("lenet5", "str"), ([["arch", "lenet5"]], "list"), (3, "int")])
def test_a_meta_that_is_not_a_dict_is_refused(meta, kind, lenet5_pt, tmp_path):
    state = torch.load(lenet5_pt, weights_only=True)["state_dict"]
    path = tmp_path / "m.pt"
    torch.save({"state_dict": state, "meta": meta}, path)
    for loader in (bridge.load, bridge.load_module):
        with pytest.raises(ValueError) as err:
            loader(path)
        assert f"its meta is a {kind}, not a dict" in one_line_naming(err, path)


@pytest.mark.parametrize("content, expected", [
    (b"\x80\x02" + b"garbage" * 20, "not a torch file (corrupt, or another format): Unsupported operand"),
    (b"some text\nthat is not a checkpoint\n" * 5, "not a readable torch file"),
    (b"PK\x03\x04" + b"\x00" * 40, "not a readable torch file"),
])
def test_garbage_is_unreadable_not_unsafe(content, expected, tmp_path):
    path = tmp_path / "m.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        bridge.load(path)
    text = one_line_naming(err, path)
    assert expected in text and "arbitrary code" not in text


def test_the_pickle_refusal_keeps_the_name_of_the_global(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))
    path = tmp_path / "m.pt"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "meta": Payload()}, path)
    with pytest.raises(ValueError) as err:
        bridge.load(path)
    text = one_line_naming(err, path)
    assert "needs arbitrary code to unpickle" in text and "system" in text.lower()
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("entry, expected", [
    ("{not json", "metadata is not valid JSON"),
    ("", "metadata is not valid JSON"),
    ("[1, 2]", "metadata is a list, not a dict"),
    ('"lenet5"', "metadata is a str, not a dict"),
    ('{"arch": "lenet5", "meta": [1]}', "its meta is a list, not a dict"),
    ('{"arch": ["lenet5"]}', "its arch is a list, not a name"),
])
def test_bad_npz_metadata_is_one_line_naming_the_file(entry, expected, tmp_path):
    arrays = npcnn.build("lenet5", seed=0).state_dict()
    path = tmp_path / "m.npz"
    np.savez(path, __npcnn__=np.array(entry), **arrays)
    with pytest.raises(ValueError) as err:
        bridge.load(path)
    assert expected in one_line_naming(err, path)


def test_npz_metadata_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, __npcnn__=np.zeros(3), **npcnn.build("lenet5", seed=0).state_dict())
    with pytest.raises(ValueError) as err:
        bridge.load(path)
    assert "not the JSON text npcnn writes" in one_line_naming(err, path)


@pytest.mark.parametrize("dtype", [np.float16, np.int64])
def test_npz_weights_npcnn_does_not_compute_in_are_refused(dtype, tmp_path):
    model = npcnn.build("lenet5", seed=0)
    arrays = {k: v.astype(dtype) for k, v in model.state_dict().items()}
    path = tmp_path / "m.npz"
    np.savez(path, __npcnn__=np.array('{"arch": "lenet5"}'), **arrays)
    with pytest.raises(ValueError) as err:
        bridge.load(path)
    assert f"holds {np.dtype(dtype)} weights" in one_line_naming(err, path)


@pytest.mark.parametrize("name", ["m.npz", "m.pt"])
def test_a_fifo_checkpoint_is_refused_without_opening_it(name, tmp_path):
    path = tmp_path / name
    os.mkfifo(path)
    with unblocking(path), pytest.raises(ValueError) as err:
        bridge.load(path)
    assert "is not a regular file" in one_line_naming(err, path)


@pytest.mark.parametrize("kind, expected", [
    ("folder", "is a folder, not a checkpoint"),
    ("empty", "is empty (0 bytes)"),
    ("dangling", "broken symbolic link"),
    ("under a file", "a part of the path is a file"),
])
def test_a_checkpoint_path_that_is_no_file(kind, expected, tmp_path):
    path = tmp_path / "m.pt"
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "dangling":
        path.symlink_to(tmp_path / "gone.pt")
    else:
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "m.pt"
    with pytest.raises(ValueError) as err:
        bridge.load(path)
    assert expected in one_line_naming(err, path)


@pytest.mark.parametrize("name", ["m.npz", "m.pt"])
def test_a_zip_bomb_checkpoint_is_refused_unread(name, tmp_path, monkeypatch):
    import zipfile
    import bridge.checkpoint
    monkeypatch.setattr(npcnn.weight_files, "MAX_WEIGHT_BYTES", 4 << 20)   # 4 MB, as 2 GB would take long to build
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", bytes(8 << 20))                # 8 MB of zeros in ~8 KB
    assert path.stat().st_size < 50_000
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("unpacked before the size check"))
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("unpacked before the size check"))
    with pytest.raises(ValueError) as err:
        bridge.load(path)
    assert "unpacks to 8,388,608 bytes, more than the 4,194,304" in one_line_naming(err, path)


def test_a_checkpoint_larger_than_any_network_is_refused_unread(tmp_path, monkeypatch):
    import bridge.checkpoint
    monkeypatch.setattr(npcnn.weight_files, "MAX_WEIGHT_BYTES", 1 << 20)
    path = tmp_path / "m.pt"
    with open(path, "wb") as f:
        f.truncate(2 << 20)                          # 2 MB of zeros, sparse
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("read before the size check"))
    with pytest.raises(ValueError) as err:
        bridge.load(path)
    assert "2,097,152 bytes, more than the 1,048,576" in one_line_naming(err, path)


def test_an_npz_that_is_no_zip_is_not_taken_for_a_pickle(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(bytes(1000))
    with pytest.raises(ValueError) as err:
        bridge.load(path)
    text = one_line_naming(err, path)
    assert "not an .npz file" in text and "pickle" not in text


def test_torch_s_advice_to_load_unsafely_is_left_out(tmp_path):
    path = tmp_path / "m.pt"
    path.write_bytes(bytes(5000))                    # zeros: torch guesses its legacy tar format
    with pytest.raises(ValueError) as err:
        bridge.load(path)
    text = one_line_naming(err, path)
    assert "not a readable torch file" in text and "weights_only` set to `False`" not in text


@pytest.mark.parametrize("recorded", [5, "../x", ["lenet5"]])
def test_a_meta_naming_no_architecture_is_refused_naming_the_file(recorded, lenet5_pt, tmp_path):
    state = torch.load(lenet5_pt, weights_only=True)["state_dict"]
    path = tmp_path / "m.pt"
    torch.save({"state_dict": state, "meta": {"arch": recorded}}, path)
    for loader in (bridge.load, bridge.load_module):
        with pytest.raises(ValueError) as err:
            loader(path)
        assert f"its meta names the architecture {recorded!r}" in one_line_naming(err, path)


def test_keys_of_another_network_are_refused_before_building_it(lenet5_pt, tmp_path, monkeypatch):
    import bridge.checkpoint
    state = torch.load(lenet5_pt, weights_only=True)["state_dict"]
    path = tmp_path / "m.pt"
    torch.save({"state_dict": state, "meta": {"arch": "vgg16"}}, path)
    monkeypatch.setattr(npcnn, "build", lambda *a, **k: pytest.fail("built VGG16 first"))
    monkeypatch.setattr(bridge.checkpoint, "torch_model", lambda *a, **k: pytest.fail("built VGG16 first"))
    for loader in (bridge.load, bridge.load_module):
        with pytest.raises(ValueError) as err:
            loader(path)
        assert "load_state_dict (vgg16): missing keys ['classifier.0.bias'" in one_line_naming(err, path)


def test_load_pretrained_names_the_architectures_it_knows():
    with pytest.raises(ValueError, match="arch must be one of vgg16, alexnet, got 'resnet50'"):
        bridge.load_pretrained("resnet50")


def test_a_fifo_given_as_pretrained_weights_is_named_not_missing(tmp_path):
    path = tmp_path / "vgg16.pth"
    os.mkfifo(path)
    with unblocking(path), pytest.raises(ValueError) as err:
        bridge.load_pretrained("vgg16", weights=path)
    assert "is not a regular file" in one_line_naming(err, path)


def test_readable_file_refuses_a_character_device():
    with pytest.raises(DataError, match="/dev/zero: is not a regular file"):
        readable_file("/dev/zero", "checkpoint")


# ---------------------------------------------------------------- images

def save(array, path, mode=None, **kwargs):
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path, **kwargs)
    return path


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32768, 65535]] * 4, dtype=np.uint16)     # 257 = 1/255 of full scale
    path = save(values, tmp_path / "g16.png")
    assert Image.open(path).mode == "I;16"
    assert np.asarray(read_image(path))[0].tolist() == [0, 1, 128, 255]


def test_32_bit_grey_with_16_bit_values_is_scaled_and_beyond_refused(tmp_path):
    path = tmp_path / "i.tiff"
    Image.fromarray(np.array([[0, 65535], [32768, 0]], dtype=np.int32)).save(path)
    assert Image.open(path).mode == "I"
    assert np.asarray(read_image(path)).tolist() == [[0, 255], [128, 0]]
    Image.fromarray(np.array([[0, 70000], [-1, 0]], dtype=np.int32)).save(path)
    with pytest.raises(ValueError) as err:
        read_image(path)
    assert "outside 16-bit grey's 0..65535" in one_line_naming(err, path)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_black_ink_on_transparent_becomes_a_white_digit_on_black(mode, tmp_path):
    rgba = np.zeros((28, 28, 4), np.uint8)          # transparent black everywhere...
    rgba[6:22, 12:16, 3] = 255                      # ...and an opaque black stroke
    path = save(rgba, tmp_path / "ink.png", mode)
    x = load_digit_image(path, 0.0, 1.0)[0, 0].numpy()            # unnormalised: 0..1
    assert x[14, 14] == pytest.approx(1.0) and x[0, 0] == pytest.approx(0.0)


def test_white_ink_on_transparent_stays_white_on_black(tmp_path):
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[6:22, 12:16] = 255                          # opaque white stroke
    x = load_digit_image(save(rgba, tmp_path / "ink.png"), 0.0, 1.0)[0, 0].numpy()
    assert x[14, 14] == pytest.approx(1.0) and x[0, 0] == pytest.approx(0.0)


def test_half_transparent_ink_is_blended_with_the_background(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 255                               # opaque black, but one half-transparent pixel
    rgba[0, 0, 3] = 128
    assert np.asarray(read_image(save(rgba, tmp_path / "a.png")))[0, 0].tolist() == [127, 127, 127]


def test_a_palette_with_a_transparent_colour(tmp_path):
    grey = np.zeros((8, 8), np.uint8)
    grey[2:6, 2:6] = 200                             # light ink, palette index of 0 transparent
    path = tmp_path / "p.png"
    Image.fromarray(grey).convert("P").save(path, transparency=0)
    assert Image.open(path).mode == "P"
    a = np.asarray(read_image(path))
    assert a[0, 0].tolist() == [0, 0, 0] and a[3, 3].tolist() == [200, 200, 200]


def test_a_fully_transparent_image_is_refused(tmp_path):
    path = save(np.zeros((8, 8, 4), np.uint8), tmp_path / "clear.png")
    with pytest.raises(ValueError) as err:
        read_image(path)
    assert "fully transparent" in one_line_naming(err, path)


def test_exif_orientation_is_applied(tmp_path):
    rgb = np.zeros((20, 40, 3), np.uint8)            # wide, with a red left half
    rgb[:, :20, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6                                 # "rotate 90 clockwise to view"
    path = tmp_path / "phone.jpg"
    Image.fromarray(rgb).save(path, exif=exif, quality=95)
    a = np.asarray(read_image(path))
    assert a.shape == (40, 20, 3)                    # portrait, as the phone showed it
    assert a[5, 10, 0] > 200 and a[35, 10, 0] < 60   # the red half now on top


def test_cmyk_jpeg_is_read_as_rgb(tmp_path):
    path = tmp_path / "c.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path)            # red in CMYK
    a = np.asarray(read_image(path))
    assert a.shape == (8, 8, 3) and a[4, 4, 0] > 200 and a[4, 4, 1] < 60


def test_float_pixels_are_refused_in_one_line(tmp_path):
    path = tmp_path / "f.tiff"
    Image.fromarray(np.ones((4, 4), np.float32)).save(path)
    with pytest.raises(ValueError) as err:
        read_image(path)
    assert "its pixels are F" in one_line_naming(err, path)


def tiny_png(width, height):
    """A valid PNG header claiming width x height and almost no data."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = zlib.compress(b"\x00" * (width + 1) * min(height, 4), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


@pytest.mark.parametrize("size, expected", [
    ((100_000, 1), f"more than {MAX_ASPECT} times the other"),
    ((1, 70_000), f"more than {MAX_ASPECT} times the other"),
    ((50_000, 50_000), "refused before decoding: Image size (2500000000 pixels) exceeds limit"),
    ((9_000, 11_000), "refused before decoding: Image size (99000000 pixels) exceeds limit of 89478485"),
])
def test_huge_or_thin_images_are_refused_before_decoding(size, expected, tmp_path, monkeypatch):
    path = tmp_path / "tiny.png"
    path.write_bytes(tiny_png(*size))
    assert path.stat().st_size < 1000
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded before the size check"))
    for read in (read_image, load_imagenet_image, lambda p: load_digit_image(p, 0.1, 0.3)):
        with pytest.raises(ValueError) as err:
            read(path)
        assert expected in one_line_naming(err, path)


def test_the_pixel_bound_holds_where_pillow_s_is_switched_off(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)     # as some libraries do at import
    path = tmp_path / "tiny.png"
    path.write_bytes(tiny_png(50_000, 50_000))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded before the size check"))
    with pytest.raises(ValueError) as err:
        read_image(path)
    assert "50000x50000 is 2,500,000,000 pixels, over the 89,478,485 npcnn decodes" in one_line_naming(err, path)


def test_a_resize_too_large_for_the_network_is_refused_before_resizing(tmp_path, monkeypatch):
    path = save(np.zeros((64, 64, 3), np.uint8), tmp_path / "a.png")
    monkeypatch.setattr(Image.Image, "resize", lambda *a, **k: pytest.fail("resized before the check"))
    with pytest.raises(ValueError) as err:
        load_imagenet_image(path, size=40_000)
    assert "resized to" in one_line_naming(err, path)


def test_a_truncated_png_names_its_path(tmp_path):
    full = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(full.getvalue()[:2000])
    with pytest.raises(ValueError) as err:
        load_imagenet_image(path)
    assert "truncated" in one_line_naming(err, path)


def test_formats_that_run_programs_are_not_opened(tmp_path):
    path = tmp_path / "x.eps"
    path.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(ValueError) as err:
        read_image(path)
    assert "not an image npcnn reads" in one_line_naming(err, path)


def test_a_fifo_image_is_refused_without_opening_it(tmp_path):
    path = tmp_path / "cat.png"
    os.mkfifo(path)
    with unblocking(path), pytest.raises(ValueError) as err:
        load_imagenet_image(path)
    assert "is not a regular file" in one_line_naming(err, path)


@pytest.mark.parametrize("mean, std", [(0.1, 0.0), (0.1, -1.0), (float("nan"), 0.3), (0.1, float("inf"))])
def test_a_digit_normalization_that_gives_no_numbers_is_refused(mean, std, tmp_path):
    path = save(np.zeros((28, 28), np.uint8), tmp_path / "d.png")
    with pytest.raises(ValueError, match="finite mean and a std > 0"):
        load_digit_image(path, mean, std)


def test_plain_8_bit_images_read_as_before(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    path = save(rgb, tmp_path / "rgb.png")
    assert np.array_equal(np.asarray(read_image(path)), rgb)
    grey = rgb[..., 0].copy()
    assert np.array_equal(np.asarray(read_image(save(grey, tmp_path / "l.png"))), grey)


# ---------------------------------------------------------------- IDX files

def test_a_gzip_bomb_is_cut_off_at_the_limit(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:               # 64 MB of zeros in a 64 KB file
        for _ in range(64):
            f.write(bytes(1 << 20))
    assert path.stat().st_size < 200_000
    with pytest.raises(DataError) as err:
        read_idx(path, max_bytes=1_000_000)
    assert "decompresses to more than the 1000000 bytes" in one_line_naming(err, path)


def test_load_mnist_reads_local_files_up_to_their_expected_size(tmp_path, monkeypatch):
    from npcnn.data import load_mnist
    monkeypatch.setenv("NPCNN_OFFLINE", "1")
    # the right header for 10,000 images, then 10 MB more than MNIST's test file holds
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(images, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + (10000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2)
        f.write(bytes(7_840_000 + 10_000_000))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(10000, np.uint8))
    with pytest.raises(DataError) as err:
        load_mnist("mnist", "test", data_dir=tmp_path)
    assert "decompresses to more than the 7840016 bytes expected" in one_line_naming(err, images)


def test_a_raw_idx_file_larger_than_expected_is_refused_unread(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(bytes(5000))
    with pytest.raises(DataError) as err:
        read_idx(path, max_bytes=100)
    assert "5000 bytes, more than the 100 expected" in one_line_naming(err, path)


def test_a_fifo_idx_file_is_refused_without_opening_it(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    os.mkfifo(path)
    with unblocking(path), pytest.raises(DataError) as err:
        read_idx(path)
    assert "is not a regular file" in one_line_naming(err, path)


# ---------------------------------------------------------------- atomic text

def test_atomic_write_text_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "sparsity.txt"
    atomic_write_text(path, "old\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "half of this \udc80 cannot be encoded")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["sparsity.txt"]


def test_a_data_dir_that_is_a_file_says_so(tmp_path):
    from npcnn.data import load_mnist
    (tmp_path / "mnist.tar").write_bytes(b"x")
    with pytest.raises(DataError) as err:
        load_mnist("mnist", "test", data_dir=tmp_path / "mnist.tar")
    assert "mnist.tar (from data_dir argument) is not a folder" in one_line_naming(err, tmp_path / "mnist.tar")
