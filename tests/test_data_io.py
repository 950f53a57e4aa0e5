"""vidlab.data.io: frame-exact reads on both backends, metadata, and a VideoReadError for every bad file."""
import subprocess

import numpy as np
import pytest

from vidlab.data.io import VideoReader, available_backends, write_video
from vidlab.errors import VideoReadError, VidlabError

T, H, W = 40, 64, 112
BITS = 6


def _frame_code(i):
    """Frame i shows its index in binary as 6 vertical bars (black/white) - robust to H.264 at crf 18."""
    f = np.zeros((H, W, 3), np.uint8)
    for b in range(BITS):
        if (i >> b) & 1:
            f[:, b * 16:(b + 1) * 16] = 255
    f[:, 96:] = (i * 6) % 256  # a grey ramp too
    return f


def _decode_code(frame):
    return sum(int(frame[H // 2, b * 16 + 8, 0] > 127) << b for b in range(BITS))


@pytest.fixture(scope="module")
def coded_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("io") / "coded.mp4"
    frames = np.stack([_frame_code(i) for i in range(T)])
    write_video(path, frames, fps=25, gop=8)  # keyframes every 8 frames: reads must seek correctly
    return path, frames


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_frame_exact_reads(coded_clip, backend):
    if backend not in available_backends():
        pytest.skip(f"{backend} not installed")
    path, frames = coded_clip
    r = VideoReader(path, backend=backend)
    assert r.backend == backend
    assert (len(r), r.height, r.width) == (T, H, W)
    assert r.fps == pytest.approx(25.0)
    idx = [39, 0, 17, 17, 8, 7, 31, 1]  # unordered, repeated, across keyframes
    got = r.get_frames(idx)
    assert got.dtype == np.uint8 and got.shape == (len(idx), H, W, 3)
    assert [_decode_code(f) for f in got] == idx
    assert np.abs(got.astype(int) - frames[idx].astype(int)).mean() < 3  # and the pixels are close to the source
    np.testing.assert_array_equal(r[5], got[0] * 0 + r.get_frames([5])[0])


def test_backends_agree(coded_clip):
    if len(available_backends()) < 2:
        pytest.skip("needs decord and PyAV")
    path, _ = coded_clip
    idx = np.arange(0, T, 3)
    a = VideoReader(path, backend="decord").get_frames(idx)
    b = VideoReader(path, backend="pyav").get_frames(idx)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_auto_falls_back_to_pyav_when_decord_cannot_decode(tmp_path):
    # decord2 3.4 opens 96-px-wide H.264 but fails to decode it; "auto" must still return the right frames
    frames = np.stack([np.pad(_frame_code(i)[:, :96], 0) for i in range(12)])
    path = write_video(tmp_path / "w96.mp4", frames)
    r = VideoReader(path)
    got = r.get_frames([3, 11, 0])
    assert [_decode_code(f) for f in got] == [3, 11, 0]
    assert r.width == 96


def test_out_of_range_index(coded_clip):
    r = VideoReader(coded_clip[0])
    with pytest.raises(VideoReadError, match=r"\[0, 40\)"):
        r.get_frames([0, 40])
    with pytest.raises(VideoReadError):
        r.get_frames([-1])


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
def test_missing_and_empty_and_garbage(tmp_path, backend):
    with pytest.raises(VideoReadError, match="no such file") as e:
        VideoReader(tmp_path / "nope.mp4", backend=backend)
    assert "nope.mp4" in str(e.value) and isinstance(e.value, VidlabError)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty"):
        VideoReader(tmp_path / "empty.mp4", backend=backend)
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoReadError, match="garbage.mp4"):
        VideoReader(tmp_path / "garbage.mp4", backend=backend)


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
def test_truncated_mp4(coded_clip, tmp_path, backend):
    import imageio_ffmpeg
    data = coded_clip[0].read_bytes()
    # moov atom at the end (PyAV's default): cutting the file loses the index -> cannot open
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoReadError, match="cut.mp4"):
        VideoReader(tmp_path / "cut.mp4", backend=backend)
    # moov at the front (faststart, as most downloads): opens, claims frames it cannot decode -> error on read
    fs = tmp_path / "faststart.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(coded_clip[0]), "-c",
                    "copy", "-movflags", "+faststart", str(fs)], check=True)
    data = fs.read_bytes()
    (tmp_path / "cut_fs.mp4").write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(VideoReadError, match="cut_fs.mp4"):
        r = VideoReader(tmp_path / "cut_fs.mp4", backend=backend)
        r.get_frames([0, T - 1])


def test_zero_frame_video(tmp_path):
    import av
    path = tmp_path / "zero.mp4"
    out = av.open(str(path), "w")
    s = out.add_stream("libx264", rate=25)
    s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
    out.start_encoding()
    out.close()
    assert path.stat().st_size > 0
    with pytest.raises(VideoReadError, match="zero.mp4.*(no video stream|no frames)"):
        VideoReader(path)


def test_write_video_checks_input(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 63, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 64, 64, 3), np.float32))
