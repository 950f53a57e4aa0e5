"""Errors vidlab raises. Each message names the file, line or argument at fault and what was expected."""
from __future__ import annotations


class VidlabError(Exception):
    """Base class of every error vidlab raises on bad input."""


class VideoReadError(VidlabError):
    """A video file is missing, corrupt, truncated or has no frames."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class AnnotationError(VidlabError):
    """An annotation file (Kinetics CSV, mmaction list, classes.txt) has a bad line."""

    def __init__(self, path, line: int | None, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class DatasetError(VidlabError):
    """A dataset root or split is missing or empty."""


class CheckpointError(VidlabError):
    """A checkpoint could not be read safely, or does not fit the model."""

    def __init__(self, message: str, missing=(), unexpected=(), mismatched=()):
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), list(mismatched)
        parts = [message]
        if self.missing:
            parts.append(f"missing keys ({len(self.missing)}): " + ", ".join(self.missing))
        if self.unexpected:
            parts.append(f"unexpected keys ({len(self.unexpected)}): " + ", ".join(self.unexpected))
        if self.mismatched:
            parts.append(f"shape mismatches ({len(self.mismatched)}): "
                         + ", ".join(f"{k}: checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched))
        super().__init__("\n  ".join(parts))


class ConfigError(VidlabError, ValueError):
    """An argument has a value vidlab cannot use (unknown model name, bad option)."""


class CheckpointSaveError(VidlabError):
    """A checkpoint could not be written (disk full, folder gone); the previous checkpoint file is kept."""


class OutOfSpaceError(VidlabError):
    """Files could not be written for lack of space (a full disk or quota); says how much was needed and free."""
