"""SPEC.md's input rules for identifiers and text: the patterns and annotated types that every
request model uses, the base model of every model, and the strict one that refuses unknown fields."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

ACCOUNT_ID_PATTERN = r"^[0-9]{12}$"
SPACE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
USER_ID_PATTERN = r"^[A-Za-z0-9._@+-]{1,128}$"
ROLE_NAME_PATTERN = r"^[\w+=,.@-]{1,64}$"
CONNECTION_ID_PATTERN = r"^[0-9a-f-]{36}$"
EMAIL_PATTERN = r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$"


_INVISIBLE = ("Cc", "Cf", "Cs", "Co", "Cn")


def _text_without(value: str, allowed: str) -> str:
    """SPEC.md's rule for text people read: no control, format or separator character (Unicode
    C*, Z*) but the plain space and ``allowed``."""
    for char in value:
        category = unicodedata.category(char)
        if char not in allowed and (category in _INVISIBLE or (category.startswith("Z") and char != " ")):
            raise ValueError(
                "must not contain control, invisible format or separator characters but the space"
            )
    return value


def no_control_characters(value: str) -> str:
    return _text_without(value, "")


def no_control_characters_but_newlines(value: str) -> str:
    return _text_without(value, "\n")


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class Model(BaseModel):
    """Every model of the service. Its validator and serializer are built on first use, not when
    the class is defined (``defer_build``): a function imports many models and uses few, and a
    cold start pays only for those. Under SnapStart the hook before the snapshot builds them all
    (``account_connections.snapstart``)."""

    model_config = ConfigDict(defer_build=True)


class StrictModel(Model):
    """Input models refuse unknown fields and never coerce types (``"12"`` is not 12)."""

    model_config = ConfigDict(extra="forbid", strict=True)


AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT_ID_PATTERN)]
SpaceId = Annotated[str, StringConstraints(pattern=SPACE_ID_PATTERN)]
UserId = Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)]
# A name people read: a display name, a space's name.
DisplayName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(not_blank),
    AfterValidator(no_control_characters),
]
# What a requester may say about the request: the same rule as a name, with line breaks.
Description = Annotated[
    str, StringConstraints(max_length=1000), AfterValidator(no_control_characters_but_newlines)
]
Email = Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=EMAIL_PATTERN)]
# An IAM role or user, as an approver list names it.
PRINCIPAL_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[\x21-\x7e]{1,575}$"
PrincipalArn = Annotated[str, StringConstraints(max_length=2048, pattern=PRINCIPAL_ARN_PATTERN)]
