"""The few facts a Camtrap DP package needs that no image holds, from a small YAML file.

Keys use Camtrap DP's own names, so the standard's documentation explains each one. Required:
`timezone` (the cameras' UTC offset: info bars and EXIF carry none), `contributors`,
`project` (title, samplingDesign, captureMethod) and coordinates for every deployment (a site
name, or `default` for every site not listed). The rest is optional or derived from the data.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from kaggle_style.errors import UserError

DEFAULT_SITE = "default"
_OFFSET = re.compile(r"^(Z|[+-](0\d|1[0-4]):[0-5]\d)$")


class MetadataError(UserError):
    """A metadata YAML that lacks what a Camtrap DP package needs, or names it wrongly."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Contributor(_Strict):
    title: str
    email: str | None = None
    path: str | None = None
    role: Literal[
        "contact", "principalInvestigator", "rightsHolder", "publisher", "contributor"
    ] = "contributor"
    organization: str | None = None


class Project(_Strict):
    title: str
    samplingDesign: Literal[
        "simpleRandom",
        "systematicRandom",
        "clusteredRandom",
        "experimental",
        "targeted",
        "opportunistic",
    ]
    captureMethod: list[Literal["activityDetection", "timeLapse"]] = Field(min_length=1)
    individualAnimals: bool = False
    id: str | None = None
    acronym: str | None = None
    description: str | None = None
    path: str | None = None


class Deployment(_Strict):
    """One camera site: coordinates are required by Camtrap DP; the rest is optional."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    coordinateUncertainty: int | None = Field(default=None, ge=1)
    locationID: str | None = None
    locationName: str | None = None
    deploymentStart: AwareDatetime | None = None  # overrides the first read time
    deploymentEnd: AwareDatetime | None = None  # overrides the last read time
    setupBy: str | None = None
    cameraID: str | None = None
    cameraModel: str | None = None
    cameraDelay: int | None = Field(default=None, ge=0)
    cameraHeight: float | None = Field(default=None, ge=0)
    cameraTilt: int | None = Field(default=None, ge=-90, le=90)
    cameraHeading: int | None = Field(default=None, ge=0, le=360)
    detectionDistance: float | None = Field(default=None, ge=0)
    timestampIssues: bool | None = None
    baitUse: bool | None = None
    featureType: (
        Literal[
            "roadPaved",
            "roadDirt",
            "trailHiking",
            "trailGame",
            "roadUnderpass",
            "roadOverpass",
            "roadBridge",
            "culvert",
            "burrow",
            "nestSite",
            "carcass",
            "waterSource",
            "fruitingTree",
        ]
        | None
    ) = None
    habitat: str | None = None
    deploymentGroups: str | None = None
    deploymentTags: str | None = None
    deploymentComments: str | None = None


class License(_Strict):
    name: str | None = None
    path: str | None = None
    scope: Literal["data", "media"]


class Temporal(_Strict):
    start: dt.date
    end: dt.date


class Metadata(_Strict):
    """The whole YAML file."""

    timezone: str
    contributors: list[Contributor] = Field(min_length=1)
    project: Project
    deployments: dict[str, Deployment] = Field(min_length=1)
    name: str | None = None  # the package's name (lowercase, digits, `-._`)
    title: str | None = None
    description: str | None = None
    licenses: list[License] | None = Field(default=None, min_length=2)
    media_base: str = ""  # prefix of every media.filePath: a URL, or "" beside the package
    file_public: bool = False  # media.filePublic: may anyone download the files?
    coordinatePrecision: float | None = None
    spatial: dict[str, Any] | None = None  # GeoJSON; default: the deployments' bounding box
    temporal: Temporal | None = None  # default: the first and last day read
    bibliographicCitation: str | None = None

    @field_validator("timezone", mode="before")
    @classmethod
    def _offset(cls, value: object) -> str:
        if not isinstance(value, str):  # YAML reads an unquoted +01:00 as a number
            raise ValueError("write the UTC offset in quotes, e.g. timezone: '+01:00'")
        if not _OFFSET.match(value):
            raise ValueError(f"{value!r} is not a UTC offset; write e.g. '+00:00' or '-05:00'")
        return "+00:00" if value == "Z" else value

    def deployment(self, site: str) -> Deployment | None:
        return self.deployments.get(site) or self.deployments.get(DEFAULT_SITE)


def read_metadata(path: str | Path | None) -> Metadata:
    """The file, checked; every problem is one line naming the file and the key."""
    from kaggle_style.config import read_yaml

    if path is None:
        raise MetadataError(
            "a Camtrap DP package needs --metadata FILE (project, contributors, "
            "timezone, site coordinates); see docs/how-to/ecologists.md"
        )
    if not Path(path).is_file():
        raise MetadataError(f"{path}: metadata file not found; check the --metadata path")
    raw = read_yaml(path)
    try:
        return Metadata.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        what = "missing" if first["type"] == "missing" else first["msg"]
        raise MetadataError(
            f"{path}: {where}: {what} ({err.error_count()} problem(s)); see "
            "docs/how-to/ecologists.md for the keys"
        ) from None
