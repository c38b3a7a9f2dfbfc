"""A Camtrap DP 1.0.2 package (TDWG's camera-trap exchange standard, what GBIF ingests).

One deployment per site; media are the images whose clock was read (info bar, else EXIF), since
the standard requires a timestamp; the others are listed in the package's `untimed-media`
resource, never given a guessed time. Observations at two levels: per image (with the
detector's boxes) and per event (our sequences: the frames of one visit), each with the
classifier's calibrated probability. Deployment start and end are the first and last times
read unless the metadata file gives them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaggle_style.constants import SITE_COL
from kaggle_style.files import write_csv, write_json
from kaggle_style.outputs.classified import FILE_COL, Classified, Thresholds, kept_classes
from kaggle_style.outputs.metadata import Metadata, MetadataError
from kaggle_style.outputs.taxonomy import BLANK, taxon_of

VERSION = "1.0.2"
_BASE = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{VERSION}"
PROFILE_URL = f"{_BASE}/camtrap-dp-profile.json"
UNTIMED_FILE = "untimed_media.csv"
# Column order of the standard's table schemas.
DEPLOYMENT_COLUMNS = (
    "deploymentID",
    "locationID",
    "locationName",
    "latitude",
    "longitude",
    "coordinateUncertainty",
    "deploymentStart",
    "deploymentEnd",
    "setupBy",
    "cameraID",
    "cameraModel",
    "cameraDelay",
    "cameraHeight",
    "cameraDepth",
    "cameraTilt",
    "cameraHeading",
    "detectionDistance",
    "timestampIssues",
    "baitUse",
    "featureType",
    "habitat",
    "deploymentGroups",
    "deploymentTags",
    "deploymentComments",
)
MEDIA_COLUMNS = (
    "mediaID",
    "deploymentID",
    "captureMethod",
    "timestamp",
    "filePath",
    "filePublic",
    "fileName",
    "fileMediatype",
    "exifData",
    "favorite",
    "mediaComments",
)
OBSERVATION_COLUMNS = (
    "observationID",
    "deploymentID",
    "mediaID",
    "eventID",
    "eventStart",
    "eventEnd",
    "observationLevel",
    "observationType",
    "cameraSetupType",
    "scientificName",
    "count",
    "lifeStage",
    "sex",
    "behavior",
    "individualID",
    "individualPositionRadius",
    "individualPositionAngle",
    "individualSpeed",
    "bboxX",
    "bboxY",
    "bboxWidth",
    "bboxHeight",
    "classificationMethod",
    "classifiedBy",
    "classificationTimestamp",
    "classificationProbability",
    "observationTags",
    "observationComments",
)


def _id(text: str) -> str:
    """A short stable identifier (the same file always gets the same mediaID)."""
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _stamp(value: str, offset: str) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%S") + offset


def _bool(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def _bbox(box: tuple[float, float, float, float]) -> dict[str, float] | None:
    """A detector box clipped to the frame; None when nothing of it is left inside."""
    x, y = min(max(box[0], 0.0), 1.0), min(max(box[1], 0.0), 1.0)
    w, h = min(box[2], 1.0 - x), min(box[3], 1.0 - y)
    if w <= 0 or h <= 0:
        return None
    return {
        "bboxX": round(x, 4),
        "bboxY": round(y, 4),
        "bboxWidth": round(max(w, 1e-4), 4),
        "bboxHeight": round(max(h, 1e-4), 4),
    }


def deployments_table(images: pd.DataFrame, meta: Metadata) -> pd.DataFrame:
    """One row per site with at least one timed image."""
    missing = [s for s in images[SITE_COL].unique() if meta.deployment(s) is None]
    if missing:
        raise MetadataError(
            f"deployments: no coordinates for site(s) {', '.join(missing[:5])}; "
            "add them, or a 'default' entry, to the metadata file"
        )
    rows = []
    for site, group in images.groupby(SITE_COL, sort=True):
        dep = meta.deployment(str(site))  # (sites are str: `Classified` reads them so)
        assert dep is not None  # sites without one were refused above
        fields = dep.model_dump(exclude_none=True)
        stamps = group["datetime"].sort_values()
        start, end = dep.deploymentStart, dep.deploymentEnd
        rows.append(
            {
                **{k: _bool(v) if isinstance(v, bool) else v for k, v in fields.items()},
                "deploymentID": site,
                "locationID": fields.get("locationID", site),
                "locationName": fields.get("locationName", site),
                "deploymentStart": start.isoformat(timespec="seconds")
                if start
                else _stamp(stamps.iloc[0], meta.timezone),
                "deploymentEnd": end.isoformat(timespec="seconds")
                if end
                else _stamp(stamps.iloc[-1], meta.timezone),
            }
        )
    return pd.DataFrame(rows).reindex(columns=list(DEPLOYMENT_COLUMNS))


def media_table(images: pd.DataFrame, meta: Metadata) -> pd.DataFrame:
    methods = meta.project.captureMethod
    return pd.DataFrame(
        {
            "mediaID": images[FILE_COL].map(_id),
            "deploymentID": images[SITE_COL],
            "captureMethod": methods[0] if len(methods) == 1 else "",
            "timestamp": [_stamp(t, meta.timezone) for t in images["datetime"]],
            "filePath": meta.media_base + images[FILE_COL],
            "filePublic": _bool(meta.file_public),
            "fileName": images[FILE_COL].map(lambda f: f.rsplit("/", 1)[-1]),
            "fileMediatype": images[FILE_COL].map(
                lambda f: mimetypes.guess_type(f)[0] or "image/jpeg"
            ),
        }
    ).reindex(columns=list(MEDIA_COLUMNS))


def _observations_of(
    kept: list[tuple[int, float]],
    boxes: list,
    base: dict[str, Any],
    thresholds: Thresholds,
    classes: tuple[str, ...],
) -> list[dict[str, Any]]:
    """The observations of one image or event: one per kept class, one per box for animals."""
    if not kept:
        return [
            {
                **base,
                "observationType": "unknown",
                "observationComments": f"no class reached --min-prob {thresholds.min_prob:g}",
            }
        ]
    out = []
    for c, p in kept:
        taxon = taxon_of(classes[c])
        row = {**base, "classificationProbability": round(p, 6)}
        if taxon is None:
            out.append({**row, "observationType": BLANK})
            continue
        row.update(observationType="animal", scientificName=taxon.scientific_name)
        regions = [b for b in (_bbox(d.bbox) for d in boxes) if b is not None]
        if regions and "mediaID" in base:
            out.extend({**row, "count": 1, **region} for region in regions)
        else:
            out.append({**row, "count": len(boxes) or ""})
    return out


def observations_table(
    images: pd.DataFrame,
    probs: np.ndarray,
    classified: Classified,
    meta: Metadata,
    thresholds: Thresholds,
) -> pd.DataFrame:
    """Media-level observations, then event-level ones (events = sequences)."""
    machine = {
        "classificationMethod": "machine",
        "classifiedBy": classified.classified_by,
        "classificationTimestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    stamps = [_stamp(t, meta.timezone) for t in images["datetime"]]
    rows: list[dict[str, Any]] = []
    boxes = [classified.boxes(f, thresholds) for f in images[FILE_COL]]
    for k, kept in enumerate(kept_classes(probs, thresholds)):
        media = _id(str(images.at[k, FILE_COL]))
        base = {
            **machine,
            "deploymentID": images.at[k, SITE_COL],
            "mediaID": media,
            "eventID": _id(str(images.at[k, "sequence"])),
            "eventStart": stamps[k],
            "eventEnd": stamps[k],
            "observationLevel": "media",
        }
        found = _observations_of(kept, boxes[k], base, thresholds, classified.classes)
        rows.extend({**r, "observationID": f"{media}_{n}"} for n, r in enumerate(found, 1))
    by_event = pd.Series(np.arange(len(images))).groupby(images["sequence"].to_numpy(), sort=True)
    for sequence, members in by_event:
        frames = members.to_numpy()
        mean = probs[frames].mean(axis=0)
        event = _id(str(sequence))
        order = np.argsort([str(images.at[k, "datetime"]) for k in frames], kind="stable")
        most = max(frames, key=lambda k: len(boxes[k]))
        base = {
            **machine,
            "deploymentID": images.at[frames[0], SITE_COL],
            "eventID": event,
            "eventStart": stamps[frames[order[0]]],
            "eventEnd": stamps[frames[order[-1]]],
            "observationLevel": "event",
        }
        found = _observations_of(
            kept_classes(mean[None], thresholds)[0],
            boxes[most],
            base,
            thresholds,
            classified.classes,
        )
        rows.extend({**r, "observationID": f"{event}_e{n}"} for n, r in enumerate(found, 1))
    return pd.DataFrame(rows).reindex(columns=list(OBSERVATION_COLUMNS))


def _spatial(deployments: pd.DataFrame) -> dict[str, Any]:
    """GeoJSON of the deployments: their point, or the box around them."""
    lon, lat = deployments["longitude"].astype(float), deployments["latitude"].astype(float)
    if lon.nunique() == 1 and lat.nunique() == 1:
        return {"type": "Point", "coordinates": [lon.iloc[0], lat.iloc[0]]}
    w, e, s, n = lon.min(), lon.max(), lat.min(), lat.max()
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "camera-traps"


def descriptor(
    meta: Metadata,
    deployments: pd.DataFrame,
    observations: pd.DataFrame,
    classified: Classified,
    untimed: bool,
) -> dict[str, Any]:
    """datapackage.json: the metadata file's facts plus what the data say."""
    resources: list[dict[str, Any]] = [
        {
            "name": name,
            "path": f"{name}.csv",
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": f"{_BASE}/{name}-table-schema.json",
        }
        for name in ("deployments", "media", "observations")
    ]
    if untimed:
        resources.append(
            {
                "name": "untimed-media",
                "path": UNTIMED_FILE,
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "description": "Images whose clock could not be read: Camtrap DP "
                "requires a timestamp, so they are not in media.csv.",
            }
        )
    names = [n for n in observations["scientificName"].dropna().unique() if n]
    taxa = [
        t.coverage()
        for c in classified.classes
        if (t := taxon_of(c)) and t.scientific_name in names
    ]
    starts = deployments["deploymentStart"].str[:10]
    ends = deployments["deploymentEnd"].str[:10]
    project = meta.project.model_dump(exclude_none=True)
    out: dict[str, Any] = {
        "resources": resources,
        "profile": PROFILE_URL,
        "name": meta.name or _slug(meta.project.title),
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "title": meta.title or f"{meta.project.title}: machine classifications",
        "contributors": [c.model_dump(exclude_none=True) for c in meta.contributors],
        "description": meta.description
        or (
            f"Camera-trap images classified by {classified.classified_by}; probabilities are "
            "the classifier's calibrated estimates."
        ),
        "version": "1.0",
        "sources": [{"title": "kaggle_style", "version": classified.commit or "unknown"}],
        "project": {**project, "observationLevel": ["media", "event"]},
        "spatial": meta.spatial or _spatial(deployments),
        "temporal": (
            {"start": meta.temporal.start.isoformat(), "end": meta.temporal.end.isoformat()}
            if meta.temporal
            else {"start": starts.min(), "end": ends.max()}
        ),
        "taxonomic": taxa,
    }
    for key in ("licenses", "coordinatePrecision", "bibliographicCitation"):
        value = getattr(meta, key)
        if value is not None:
            out[key] = (
                [v.model_dump(exclude_none=True) for v in value] if key == "licenses" else value
            )
    return out


def write_camtrap_dp(
    classified: Classified, meta: Metadata, thresholds: Thresholds, out: Path
) -> dict[str, int]:
    """Write the package into folder `out` (datapackage.json last); return its row counts."""
    out = Path(out)
    images = classified.images
    timed = (images["datetime"] != "").to_numpy()
    if not timed.any():
        raise MetadataError(
            f"no image has a readable clock (info bar or EXIF): a Camtrap DP "
            f"package needs timestamps; {len(images)} image(s) left nothing"
        )
    used = images[timed].reset_index(drop=True)
    deployments = deployments_table(used, meta)
    media = media_table(used, meta)
    observations = observations_table(used, classified.probs[timed], classified, meta, thresholds)
    for name, table in (
        ("deployments", deployments),
        ("media", media),
        ("observations", observations),
    ):
        write_csv(out / f"{name}.csv", table, float_format="%.6g")
    untimed = images[~timed]
    if len(untimed):
        write_csv(out / UNTIMED_FILE, untimed[[FILE_COL, SITE_COL]])
    else:
        (out / UNTIMED_FILE).unlink(missing_ok=True)
    write_json(
        out / "datapackage.json",
        descriptor(meta, deployments, observations, classified, bool(len(untimed))),
    )
    return {
        "deployments": len(deployments),
        "media": len(media),
        "observations": len(observations),
        "untimed": len(untimed),
    }
