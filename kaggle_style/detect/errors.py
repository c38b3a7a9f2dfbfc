"""Errors of the detection stages, apart from the backends so that no backend imports the
module that runs it (which would make an import cycle)."""

from __future__ import annotations

from kaggle_style.errors import UserError


class DetectorError(UserError):
    """A detector that cannot run here: missing package or weights; the message says the fix."""


class SourceError(UserError, ValueError):
    """Neither or both of --data and --images, or a folder that holds no images."""


class DetectionsFileError(UserError, ValueError):
    """A detections file that is missing or not MegaDetector's batch-output format."""
