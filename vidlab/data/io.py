"""Reading video frames by index.

`VideoReader(path)` opens an mp4 (or anything FFmpeg reads) with decord when it is installed and can open the
file, otherwise with PyAV, and returns exactly the frames you ask for:

    reader = VideoReader("clip.mp4")
    len(reader), reader.fps, reader.height, reader.width
    frames = reader.get_frames([0, 4, 8])     # uint8 (3, H, W, 3), RGB

Both backends are frame-exact: index i is the i-th frame in presentation order, whichever keyframes the file
has. Every problem with a file (missing, not a video, truncated, no frames, an index out of range) raises
`vidlab.errors.VideoReadError` naming the file; nothing returns black frames in place of a failure.

Orientation. A phone clip may store its frames sideways plus a display rotation (the mp4 `tkhd` matrix). Both
backends return frames *as a player shows them* (upright): decord applies the rotation itself, PyAV frames are
rotated here. `reader.rotation` is the display rotation in degrees (counter-clockwise, FFmpeg's sign); `height`
and `width` are those of the upright frames. decord 3.4 fails on rotated frames that are not square, so "auto"
reads rotated files with PyAV.

Threads and hangs. PyAV decodes with one thread and keeps PyAV's default FFmpeg log handler (which drops the
messages in C). Installing PyAV's Python log handler (`av.logging.set_level(...)`) together with FFmpeg's frame
threads deadlocks on corrupt files: a decoder thread logs "invalid data" and waits for the interpreter lock inside
the handler, while the thread holding the lock waits for that decoder thread to finish (closing the codec).
"""
from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import VideoReadError

__all__ = ["VideoReader", "available_backends", "display_rotation", "probe", "write_video"]

BACKENDS = ("decord", "pyav")


def _have(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def available_backends() -> list[str]:
    """Backends importable in this environment, in the order "auto" tries them."""
    return [b for b, m in (("decord", "decord"), ("pyav", "av")) if _have(m)]


def _boxes(f, start: int, end: int):
    """(type, payload start, box end) of the ISO-BMFF boxes in f[start:end] (mp4/mov container structure)."""
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", f.read(8))[0], 16
        elif size == 0:
            size = end - pos
        if size < head:
            return
        yield kind, pos + head, pos + size
        pos += size


def display_rotation(path: str | os.PathLike) -> int:
    """Display rotation (degrees counter-clockwise, a multiple of 90, FFmpeg's sign) of the first video track of an
    mp4/mov, read from its `tkhd` matrix; 0 when there is none or the file is not an ISO-BMFF container."""
    try:
        with open(path, "rb") as f:
            end = os.fstat(f.fileno()).st_size
            for kind, s, e in _boxes(f, 0, end):
                if kind != b"moov":
                    continue
                for kind2, s2, e2 in _boxes(f, s, e):
                    if kind2 != b"trak":
                        continue
                    for kind3, s3, e3 in _boxes(f, s2, e2):
                        if kind3 != b"tkhd":
                            continue
                        f.seek(s3)
                        data = f.read(min(e3 - s3, 128))
                        base = 4 + (20 if data[:1] == b"\x00" else 32) + 16   # version/flags, times, reserved
                        if len(data) < base + 44:
                            break
                        m = struct.unpack(">9i", data[base:base + 36])
                        width, height = struct.unpack(">II", data[base + 36:base + 44])
                        if width == 0 or height == 0:       # an audio track: look at the next trak
                            break
                        deg = -math.degrees(math.atan2(m[1], m[0]))
                        return int(round(deg / 90.0)) * 90 % 360 if (m[0] or m[1]) else 0
    except (OSError, struct.error):
        return 0
    return 0


def _truncation(path: str) -> str:
    """'' or how an mp4/mov is cut short: a top-level box that runs past the end of the file, or media data (mdat)
    without the index (moov) that a file written with its index at the end gets last (an interrupted download)."""
    try:
        with open(path, "rb") as f:
            end = os.fstat(f.fileno()).st_size
            kinds = []
            for kind, _, box_end in _boxes(f, 0, end):
                if not kinds and kind != b"ftyp":
                    return ""                      # not an ISO-BMFF file: its bytes are not boxes
                kinds.append(kind)
                if box_end > end:
                    return (f"the file is truncated: its {kind.decode('latin-1')} box needs {box_end} bytes, the "
                            f"file has {end}")
    except OSError:
        return ""
    if b"mdat" in kinds and b"moov" not in kinds:
        return "the file is truncated: it holds media data (mdat) but not the index (moov box) that follows it"
    return ""


class _DecordBackend:
    name = "decord"

    def __init__(self, path: str):
        import decord
        decord.logging.set_level(decord.logging.QUIET)  # failures are raised as VideoReadError, not printed
        try:
            # num_threads=1: data loading parallelism comes from DataLoader workers, not from inside a reader.
            self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        except Exception as e:  # decord raises DECORDError / RuntimeError with C++ text
            raise VideoReadError(path, f"decord cannot open it ({str(e).splitlines()[0][:200]})") from None
        self.num_frames = len(self._vr)
        self.fps = float(self._vr.get_avg_fps() or 0.0)
        h = w = 0
        if self.num_frames > 0:
            try:
                h, w = self._vr[0].shape[:2]
                self._vr.seek(0)
            except Exception as e:
                raise VideoReadError(path, f"decord cannot decode its first frame ({str(e).splitlines()[0][:200]})"
                                     ) from None
        self.height, self.width = int(h), int(w)
        self.path = path

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        try:
            out = self._vr.get_batch(list(map(int, indices))).asnumpy()
        except Exception as e:
            raise VideoReadError(self.path, f"decord failed to decode frames ({str(e).splitlines()[0][:200]}); "
                                 "the file is probably truncated or corrupt") from None
        return np.ascontiguousarray(out, dtype=np.uint8)


class _PyAVBackend:
    """Decodes sequentially from the start up to the last wanted frame.

    Slower than decord's keyframe seeking on long videos, but frame indices are counted on decoded frames, so the
    result is exact even when the container's frame count or timestamps are unreliable."""
    name = "pyav"

    def __init__(self, path: str, rotation: int = 0):
        import av  # PyAV's log level is left alone: see "Threads and hangs" in the module docstring
        self.path, self.rotation = path, rotation
        try:
            with av.open(path) as c:
                if not c.streams.video:
                    raise VideoReadError(path, "the file has no video stream (an mp4 with zero frames has none)")
                s = c.streams.video[0]
                self.fps = float(s.average_rate or s.guessed_rate or 0.0)
                self.height, self.width = int(s.codec_context.height), int(s.codec_context.width)
                if rotation % 180:  # upright frames of a sideways-stored clip
                    self.height, self.width = self.width, self.height
                # Count packets instead of trusting stream.frames (0 or wrong for many containers).
                n = 0
                for pkt in c.demux(s):
                    if pkt.size:
                        n += 1
                self.num_frames = n
        except VideoReadError:
            raise
        except Exception as e:
            raise VideoReadError(path, f"PyAV cannot open it ({type(e).__name__}: {str(e)[:200]})") from None

    def get_frames(self, indices: np.ndarray) -> np.ndarray:
        import av
        wanted = set(int(i) for i in indices)
        last = max(wanted)
        got: dict[int, np.ndarray] = {}
        try:
            with av.open(self.path) as c:
                s = c.streams.video[0]
                s.codec_context.thread_count = 1  # no FFmpeg frame threads (module docstring: threads and hangs)
                for i, frame in enumerate(c.decode(s)):
                    if i in wanted:
                        a = frame.to_ndarray(format="rgb24")
                        k = (frame.rotation or 0) // 90 % 4
                        got[i] = np.rot90(a, k) if k else a   # upright, as decord and players show it
                    if i >= last:
                        break
        except Exception as e:
            raise VideoReadError(self.path, f"PyAV failed while decoding ({type(e).__name__}: {str(e)[:200]}); "
                                 "the file is probably truncated or corrupt") from None
        missing = sorted(i for i in wanted if i not in got)
        if missing:
            raise VideoReadError(self.path, f"only {max(got, default=-1) + 1} frames could be decoded, "
                                 f"frame {missing[0]} was asked for; the file is probably truncated")
        return np.ascontiguousarray(np.stack([got[int(i)] for i in indices]), dtype=np.uint8)


class VideoReader:
    """Frame-exact random access to one video file.

    Args:
        path: the video file.
        backend: "auto" (decord, falling back to PyAV when decord is missing or cannot open the file),
            "decord" or "pyav".

    Attributes: `num_frames` (also `len(reader)`), `fps`, `height`, `width` (of the upright frames), `rotation`
    (display rotation in degrees, see the module docstring), `backend` (the one in use).
    """

    def __init__(self, path: str | os.PathLike, backend: str = "auto"):
        self.path = str(path)
        if backend not in ("auto",) + BACKENDS:
            from ..errors import ConfigError
            raise ConfigError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
        p = Path(self.path)
        if not p.exists():
            raise VideoReadError(self.path, "no such file")
        if p.is_dir():
            raise VideoReadError(self.path, "is a directory, not a video file")
        if p.stat().st_size == 0:
            raise VideoReadError(self.path, "the file is empty (0 bytes)")
        self.rotation = display_rotation(self.path)
        order = [backend] if backend != "auto" else available_backends()
        if self.rotation and backend == "auto" and "pyav" in order:
            order = ["pyav"] + [b for b in order if b != "pyav"]  # decord fails on rotated non-square frames
        if not order:
            raise VideoReadError(self.path, "no video backend installed: pip install decord2 or av")
        errors = []
        self._impl = None
        self._auto = backend == "auto"
        self.fallback_reason = "; ".join(errors) or None  # why "auto" did not end up on decord, if it did not
        for name in order:
            try:
                impl = _DecordBackend(self.path) if name == "decord" else _PyAVBackend(self.path, self.rotation)
            except ImportError as e:
                errors.append(f"{name}: not installed ({e})")
                continue
            except VideoReadError as e:
                errors.append(f"{name}: {e.reason}")
                continue
            if impl.num_frames <= 0:
                errors.append(f"{name}: the video has no frames")
                continue
            self._impl = impl
            break
        if self._impl is None:
            cut = _truncation(self.path)      # the backends' own words ("cannot find video stream") do not say it
            raise VideoReadError(self.path, "; ".join(([cut] if cut else []) + errors))
        self.backend = self._impl.name
        self.fallback_reason = "; ".join(errors) or None
        self.num_frames = int(self._impl.num_frames)
        self.fps = float(self._impl.fps)
        self.height, self.width = int(self._impl.height), int(self._impl.width)

    def __len__(self) -> int:
        return self.num_frames

    @property
    def duration(self) -> float:
        """Seconds, from the frame count and the average frame rate."""
        return self.num_frames / self.fps if self.fps else float("nan")

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 (len(indices), H, W, 3) RGB frames at `indices` (any order, repeats allowed)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        if idx.min() < 0 or idx.max() >= self.num_frames:
            raise VideoReadError(self.path, f"frame indices must lie in [0, {self.num_frames}), "
                                 f"got min {idx.min()} max {idx.max()}")
        # decode each frame once, in increasing order (repeats and backward jumps make decoders re-seek)
        uniq, inverse = np.unique(idx, return_inverse=True)
        try:
            frames = self._impl.get_frames(uniq)
        except VideoReadError as e:
            if not (self._auto and self.backend == "decord" and "pyav" in available_backends()):
                raise
            # decord can open some files it then fails to decode (decord2 3.4 fails on 96-px-wide H.264, for
            # one); PyAV decides, and stays in use for this reader.
            try:
                self._impl = _PyAVBackend(self.path, self.rotation)
                frames = self._impl.get_frames(uniq)
            except VideoReadError as e2:
                raise VideoReadError(self.path, f"decord: {e.reason}; pyav: {e2.reason}") from None
            self.fallback_reason, self.backend = e.reason, "pyav"
        if frames.shape[0] != uniq.size or frames.ndim != 4 or frames.shape[-1] != 3:
            raise VideoReadError(self.path, f"{self.backend} returned frames of shape {frames.shape} "
                                 f"for {uniq.size} indices")
        return frames if uniq.size == idx.size and np.array_equal(uniq, idx) else frames[inverse.reshape(-1)]

    def __getitem__(self, i: int) -> np.ndarray:
        return self.get_frames([i])[0]

    def read_all(self) -> np.ndarray:
        return self.get_frames(np.arange(self.num_frames))

    def __repr__(self) -> str:
        return (f"VideoReader({self.path!r}, backend={self.backend!r}, frames={self.num_frames}, "
                f"fps={self.fps:.2f}, size={self.height}x{self.width})")


def probe(path: str | os.PathLike, backend: str = "auto") -> dict:
    """Metadata of a video without decoding frames: num_frames, fps, height, width, backend."""
    r = VideoReader(path, backend=backend)
    return {"num_frames": r.num_frames, "fps": r.fps, "height": r.height, "width": r.width, "backend": r.backend}


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 25, crf: int = 18,
                preset: str = "veryfast", gop: int | None = None) -> Path:
    """Encode uint8 (T, H, W, 3) RGB frames as H.264 (yuv420p) mp4 with PyAV. H and W must be even.

    crf 18 keeps sharp-edged synthetic objects crisp at small sizes. x264 runs single-threaded (data loading
    parallelism comes from processes); its output bits may still vary slightly between runs."""
    import av
    from fractions import Fraction
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 with yuv420p needs even height and width, got {h}x{w}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4") as out:
        s = out.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": str(crf), "preset": preset, "threads": "1",
                     "x264-params": f"keyint={gop or max(t, 1)}:min-keyint=1:scenecut=0"}
        s.codec_context.thread_count = 1
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path
