"""Inputs of the use cases, as msgspec structs: JSON in camelCase, validated on decode.

Strings have sane maximum lengths; emails are trimmed and lower-cased in __post_init__.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from domain.enums import FormType
from domain.rules import FORM_RULES, form_types

# Explicit character classes (no \s): the pattern means the same in Python and in the
# ECMA regex dialect of JSON Schema, so clients validating against OpenAPI agree with us.
EMAIL_PATTERN = (
    r"^[ \t\r\n]*[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
    r"[ \t\r\n]*$"
)

Email = Annotated[
    str, msgspec.Meta(max_length=254, pattern=EMAIL_PATTERN, examples=["buyer@company.com"])
]
# Characters that show nothing: controls, every Unicode space (NBSP included), and the
# invisible format characters (zero-width space and joiners, soft hyphen, BOM, fillers).
# A name made only of them normalises to nothing: it is refused, never stored as "" or null.
INVISIBLE = (
    r"\x00-\x20\x7f-\xa0\xad\u115f\u1160\u180e\u2000-\u200f\u2028-\u202f"
    r"\u205f-\u2064\u2800\u3000\u3164\ufeff\uffa0"
)
VISIBLE = f"[^{INVISIBLE}]"  # matched anywhere: "holds at least one visible character"
# Optional names: blank (what an untouched form field sends) means absent; anything else
# must show something. Required names must show something.
Name = Annotated[
    str,
    msgspec.Meta(
        max_length=200,
        pattern=rf"^[ \t\r\n]*$|{VISIBLE}",
        description="Blank for none; otherwise at least one visible character",
    ),
]
RequiredName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=200,
        pattern=VISIBLE,
        description="At least one visible character",
    ),
]
Phone = Annotated[str, msgspec.Meta(max_length=50, pattern=r"^[0-9+()\-.\s/x]*$")]
Message = Annotated[str, msgspec.Meta(max_length=10_000)]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=200)]
# At most 50 keys. Its depth is bounded at the edge (api/inputs.py: a JSON body nests at
# most 32 levels, so metadata at most 30 below itself).
Metadata = Annotated[
    dict[str, Any],
    msgspec.Meta(max_length=50, description="Free-form; at most 50 keys and 30 levels deep"),
]
# A field people never see (the form hides it) and bots fill in; see domain/intake/spam.py.
Honeypot = (
    Annotated[
        str,
        msgspec.Meta(
            max_length=200,
            description="Leave empty. A hidden form field: a request that fills it is a bot's, "
            "answered like any other and dropped.",
        ),
    ]
    | None
)


BLANK = " \t\r\n"  # what trimming removes; the same set the patterns above name


def normalize_email(email: str) -> str:
    return email.strip(BLANK).lower()


_INVISIBLE_CHARS = "".join(
    chr(c)
    for lo, hi in re.findall(r"(\\[xu][0-9a-f]+)(?:-(\\[xu][0-9a-f]+))?", INVISIBLE)
    for c in range(int(lo[2:], 16), int((hi or lo)[2:], 16) + 1)
)


def _blank_to_none(value: str | None) -> str | None:
    """Trimmed of invisible characters at both ends; None when nothing is left."""
    if value is None:
        return None
    value = value.replace("\x00", "").strip(_INVISIBLE_CHARS)
    return value or None


def without_nul(value: Any) -> Any:
    """PostgreSQL text and JSONB cannot hold NUL characters: drop them, keys included."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


class Command(msgspec.Struct, rename="camel", forbid_unknown_fields=False, kw_only=True):
    def __post_init__(self) -> None:
        if hasattr(self, "email"):
            self.email: str = normalize_email(self.email)
        for field in ("name", "company_name", "phone", "message", "company"):
            if hasattr(self, field):
                setattr(self, field, _blank_to_none(getattr(self, field)))
        metadata = getattr(self, "metadata", None)
        if metadata:
            setattr(self, "metadata", without_nul(metadata))  # noqa: B010


FormTypeName = Annotated[
    str,
    msgspec.Meta(
        max_length=32,
        description="a form type of the rules (domain/rules.py FORM_RULES)",
        examples=[t.value for t in FormType],
        # The schema names the rules' form types as they are at start-up (the check itself
        # reads the rules on every request), so clients and fuzzers see the closed set.
        extra_json_schema={"extra": {"enum": list(form_types())}},
    ),
]


class SubmitForm(Command):
    form_type: FormTypeName
    email: Email
    name: Name | None = None
    company_name: Name | None = None
    phone: Phone | None = None
    message: Message | None = None
    metadata: Metadata | None = None
    custom_fields: Annotated[dict[str, Any], msgspec.Meta(max_length=50)] | None = None
    website: Honeypot = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.form_type not in FORM_RULES:
            raise ValueError(f"formType must be one of {', '.join(form_types())}")


class Register(Command):
    name: RequiredName
    email: Email
    password: Password
    company: Name | None = None

    def __repr__(self) -> str:  # never print the password
        return f"Register(email={self.email!r})"


class Subscribe(Command):
    email: Email
    website: Honeypot = None


class QuoteLineInput(msgspec.Struct, rename="camel", kw_only=True):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"[^ \t\r\n\x00]")]
    quantity: Annotated[int, msgspec.Meta(gt=0, le=1_000_000)]
    name: Name | None = None
    unit: Annotated[str, msgspec.Meta(max_length=32)] | None = None

    def __post_init__(self) -> None:
        self.sku = self.sku.replace("\x00", "").strip(BLANK)
        self.name = _blank_to_none(self.name)
        self.unit = _blank_to_none(self.unit)


class SubmitRfq(Command):
    email: Email
    lines: Annotated[list[QuoteLineInput], msgspec.Meta(min_length=1, max_length=200)]
    name: Name | None = None
    company_name: Name | None = None
    phone: Phone | None = None
    message: Message | None = None
    website: Honeypot = None
