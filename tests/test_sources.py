"""Frame sources on real files, real sockets and real threads (picamera2 is the one stand-in)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import Config
from edge.sources import SourceError, SourceExhausted, capture_frame, open_source
from edge.sources.demo import DemoSource
from tests.source_helpers import card, config


def read_all(source: object, limit: int = 100) -> list:
    frames = []
    with pytest.raises(SourceExhausted):
        for _ in range(limit):
            frame = source.read(5.0)  # type: ignore[attr-defined]
            if frame is not None:
                frames.append(frame)
    return frames


# ---- file: and dir: -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_file_source_delivers_the_image_once(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"meter{suffix}"
    assert cv2.imwrite(str(path), card(200, (80, 60)))
    source = open_source(f"file:{path}", config())
    assert not source.live
    frames = read_all(source)
    assert len(frames) == 1
    assert frames[0].image.shape == (60, 80, 3)
    assert frames[0].name == str(path)
    assert abs(int(frames[0].image.mean()) - 200) <= 2
    assert source.state == "exhausted"


def test_file_source_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"file:.*nothere\.png: no such file"):
        open_source(f"file:{tmp_path / 'nothere.png'}", config())
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(SourceError, match=r"notes\.png: not an image OpenCV can read"):
        open_source(f"file:{text}", config())
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match=r"empty\.jpg: empty file"):
        open_source(f"file:{empty}", config())
    with pytest.raises(SourceError, match="needs a path"):
        open_source("file:", config())


def test_dir_source_plays_in_name_order_and_skips_bad_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in [("img10.png", 100), ("img2.jpg", 20), ("img1.png", 10), ("img3.png", 30)]:
        assert cv2.imwrite(str(tmp_path / name), card(value))
    (tmp_path / "img4.png").write_bytes(b"")  # zero bytes
    good = cv2.imencode(".jpg", card(50))[1].tobytes()
    (tmp_path / "img5.jpg").write_bytes(good[: len(good) // 3])  # truncated JPEG header and all
    (tmp_path / "img6.png").write_text("this is text")
    (tmp_path / "readme.txt").write_text("not an image, not even tried")
    caplog.set_level(logging.WARNING, logger="edge.sources")
    source = open_source(f"dir:{tmp_path}", config())
    names = [Path(f.name).name for f in read_all(source)]
    assert names[:4] == ["img1.png", "img2.jpg", "img3.png", "img10.png"]
    assert "img4.png" not in names and "img6.png" not in names and "readme.txt" not in names
    logged = caplog.text
    assert "img4.png" in logged and "img6.png" in logged
    assert "img5.jpg" in logged or "img5.jpg" in names  # a decoder may recover a truncated JPEG
    assert "readme.txt" not in logged


def test_dir_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no image files"):
        open_source(f"dir:{tmp_path}", config())
    with pytest.raises(SourceError, match="no such folder"):
        open_source(f"dir:{tmp_path / 'missing'}", config())


def test_finite_sources_are_paced_at_fps(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), card(i))
    cfg = Config.model_validate({"fps": 0.1})  # one frame every 10 s
    source = open_source(f"dir:{tmp_path}", cfg)
    assert source.read(1.0) is not None  # the first frame is due at once
    assert source.read(0.0) is None  # the next one is not due within the timeout


# ---- video: ---------------------------------------------------------------------------------


def write_video(path: Path, values: list[int]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for value in values:
        writer.write(card(value))
    writer.release()


def test_video_source_reads_every_frame_in_order(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    values = [0, 40, 80, 120, 160, 200]
    write_video(path, values)
    source = open_source(f"video:{path}", config())
    assert "64x48" in source.describe()
    frames = read_all(source)
    assert [f.index for f in frames] == list(range(len(values)))
    assert [round(f.image.mean() / 40) * 40 for f in frames] == values


def test_video_source_rejects_what_is_not_a_video(tmp_path: Path) -> None:
    bogus = tmp_path / "clip.mp4"
    bogus.write_text("no video here")
    with pytest.raises(SourceError, match=r"video:.*clip\.mp4: not a video OpenCV can read"):
        open_source(f"video:{bogus}", config())
    with pytest.raises(SourceError, match="no such file"):
        open_source(f"video:{tmp_path / 'gone.avi'}", config())


# ---- cameras and streams that are not there -------------------------------------------------


def test_missing_usb_camera_names_the_device() -> None:
    with pytest.raises(SourceError) as err:
        open_source("usb:57", config())
    message = str(err.value)
    assert "usb:57" in message and "/dev/video57" in message
    assert "found:" in message or "no /dev/video* devices" in message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_unreachable_stream_fails_with_its_url(scheme: str) -> None:
    url = f"{scheme}://viewer:s3cret@127.0.0.1:{free_port()}/live"
    with pytest.raises(SourceError) as err:
        open_source(url, config(stall_timeout_s=2))
    message = str(err.value)
    assert "127.0.0.1" in message and "cannot open the stream" in message
    assert "s3cret" not in message  # passwords never reach logs or errors


def test_stream_that_accepts_but_never_answers_times_out() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/video.mjpg"
        with pytest.raises(SourceError, match=r"no answer within 0\.5 s"):
            open_source(url, config(stall_timeout_s=0.5))


@pytest.mark.parametrize("spec", ["usb:abc", "picamera:x", "webcam", "ftp://host/x", "usb"])
def test_bad_specs_say_what_is_expected(spec: str) -> None:
    with pytest.raises(SourceError, match=r"index must be a number|expected demo, usb:N"):
        open_source(spec, config())


# ---- demo -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(640, 480), (320, 240)])
def test_demo_renders_dark_ink_on_light_paper(size: tuple[int, int]) -> None:
    cfg = Config.model_validate({"fps": 100, "camera": {"width": size[0], "height": size[1]}})
    source = open_source("demo", cfg)
    frames = [source.read(5.0) for _ in range(3)]
    assert all(f is not None for f in frames)
    image = frames[0].image  # type: ignore[union-attr]
    assert image.shape == (size[1], size[0], 3) and image.dtype == np.uint8
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert np.median(gray) > 170  # paper
    ink = np.count_nonzero(gray < 90) / gray.size
    assert 0.002 < ink < 0.1  # some digits, not a dark frame
    assert [f.index for f in frames] == [0, 1, 2]  # type: ignore[union-attr]


def test_demo_is_deterministic_and_its_value_changes() -> None:
    a, b = DemoSource(Config()), DemoSource(Config())
    assert np.array_equal(a.frame_at(7), b.frame_at(7))
    later = a.frames_per_value
    assert a.value_at(0) != a.value_at(later)
    assert int(a.value_at(later)[0]) > int(a.value_at(0)[0])  # the meter counts up
    assert not np.array_equal(a.frame_at(0), a.frame_at(later))


# ---- capture --------------------------------------------------------------------------------


def test_capture_writes_a_readable_jpeg(tmp_path: Path) -> None:
    out = tmp_path / "seen.jpg"
    assert capture_frame("demo", Config(), out) == out
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (480, 640, 3)
    assert not list(tmp_path.glob(".*partial*"))


def test_capture_from_a_file_source(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), card(99))
    out = tmp_path / "out.png"
    capture_frame(f"file:{src}", config(), out)
    assert np.array_equal(cv2.imread(str(out)), card(99))


def test_capture_rejects_bad_outputs_before_opening(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"cannot write '\.txt' images"):
        capture_frame("usb:57", config(), tmp_path / "frame.txt")  # the camera is never tried
    with pytest.raises(SourceError, match="no file extension"):
        capture_frame("demo", config(), tmp_path / "frame")
    with pytest.raises(SourceError, match="does not exist"):
        capture_frame("demo", config(), tmp_path / "no" / "frame.jpg")
    with pytest.raises(SourceError, match="usb:57"):
        capture_frame("usb:57", config(), tmp_path / "frame.jpg")
