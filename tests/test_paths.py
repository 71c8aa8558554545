"""vis.paths: path arguments checked before the work, folders created only to be written."""
import os

import pytest

from vis.arguments import BadArgument
from vis.paths import input_dir, input_file, output_dir, output_file, writing_into


def test_output_dir_checks_and_creates_nothing(tmp_path):
    assert output_dir(str(tmp_path / "a" / "b")) == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []


def test_input_file_suffixes(tmp_path):
    (tmp_path / "cat.JPG").write_bytes(b"x")
    (tmp_path / "cat.txt").write_bytes(b"x")
    assert input_file(str(tmp_path / "cat.JPG"), "image", suffixes=(".jpg", ".png")) == tmp_path / "cat.JPG"
    with pytest.raises(BadArgument, match=r"cat.txt: expected a .jpg or .png image"):
        input_file(str(tmp_path / "cat.txt"), "image", suffixes=(".jpg", ".png"))


def test_a_symlink_to_a_regular_file_is_an_input_and_to_a_folder_an_output(tmp_path):
    (tmp_path / "real.pt").write_bytes(b"x")
    (tmp_path / "link.pt").symlink_to(tmp_path / "real.pt")
    (tmp_path / "dir").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "dir")
    assert input_file(str(tmp_path / "link.pt")) == tmp_path / "link.pt"
    assert output_dir(str(tmp_path / "out")) == tmp_path / "out"
    with pytest.raises(BadArgument, match="is a file, not a folder"):
        input_dir(str(tmp_path / "link.pt"))


def test_output_file_in_a_folder_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(BadArgument, match="output folder .*f is a file, not a folder"):
        output_file(str(tmp_path / "f" / "m.pt"))


def test_writing_into_removes_only_the_empty_folders_it_made(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(KeyboardInterrupt):
        with writing_into(tmp_path / "kept" / "a" / "b"):
            raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == ["kept"] and os.listdir(tmp_path / "kept") == []


def test_writing_into_keeps_what_was_written(tmp_path):
    with pytest.raises(ValueError):
        with writing_into(tmp_path / "a" / "b") as out:
            (out / "figure.png").write_bytes(b"png")
            raise ValueError("a later figure failed")
    assert (tmp_path / "a" / "b" / "figure.png").read_bytes() == b"png"


def test_writing_into_a_folder_that_cannot_be_made_is_one_line():
    with pytest.raises(ValueError, match="/proc/npcnn-test: cannot create the folder"):
        with writing_into("/proc/npcnn-test"):
            pass
