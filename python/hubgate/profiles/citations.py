"""What a profile's facts cite: its public sources, how sure each fact is, and the
base models every profile table is built on.

`Strict` is the base of every profile model (unknown keys are errors); `Fact` the
base of every table or register taken from a public source: it names `[[sources]]`
ids (`Source`) and says how sure it is (`Status`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)


class Strict(BaseModel):
    """Base of every profile model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Status(StrEnum):
    """How sure we are of a fact."""

    VERIFIED = "verified"
    """A cited public source states it."""
    UNVERIFIED = "unverified"
    """Inferred: no cited source states it (the notes say from what)."""
    CONFLICT = "conflict"
    """Cited sources disagree; the notes say who says what."""


SourceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]*$", max_length=40)]


class SourceKind(StrEnum):
    """What kind of public document a source is."""

    VENDOR = "vendor"
    """The vendor's manual or register list: title and version or page."""
    OPEN_MAP = "open-map"
    """An independent open register map in a public repository (evcc, OpenEMS, mbmd...)."""
    STANDARD = "standard"
    """A published standard or its machine-readable models (SunSpec, IEC)."""
    COMMUNITY = "community"
    """A public user report: issue thread, forum post, integration notes."""
    CONVENTION = "convention"
    """A layout hubgate defines for a device configured to it (no vendor map exists)."""


class Source(Strict):
    """One public source a profile's facts cite by `id`."""

    id: SourceId
    kind: SourceKind
    title: str = Field(min_length=3, description="Manual title, or what the file or thread is")
    version: str | None = Field(default=None, description="Manual version or date")
    page: str | None = Field(default=None, description="Page, table or section")
    repo: str | None = Field(
        default=None, pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name of the repository"
    )
    commit: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{7,40}$", description="Commit the facts were read at"
    )
    path: str | None = Field(default=None, description="File in the repository")
    url: str | None = Field(default=None, description="Public address (issue, page)")

    @model_validator(mode="after")
    def _locatable(self) -> Source:
        if self.kind is SourceKind.OPEN_MAP and not (self.repo and self.commit and self.path):
            raise ValueError("an open-map source needs repo, commit and path")
        if self.kind is SourceKind.VENDOR and not (self.version or self.page):
            raise ValueError("a vendor source needs the manual's version or page")
        if self.kind is SourceKind.COMMUNITY and not (self.url or self.repo):
            raise ValueError("a community source needs url or repo")
        return self


def _as_ids(value: object) -> object:
    """`source = "a"` is `source = ["a"]`."""
    return (value,) if isinstance(value, str) else value


SourceIds = Annotated[
    tuple[SourceId, ...],
    BeforeValidator(_as_ids),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}},
            ]
        }
    ),
]
"""One source id or a list of them."""


class Fact(Strict):
    """Anything taken from a public source: which, how sure, and a note.

    `source` names `[[sources]]` ids; without it the fact cites what its
    enclosing table (or the profile) cites.
    """

    status: Status = Status.VERIFIED
    notes: str = ""
    source: SourceIds = Field(
        default=(), description="Ids of the [[sources]] stating this fact (else its table's)"
    )
