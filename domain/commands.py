"""Inputs of the use cases, as msgspec structs: JSON in camelCase, validated on decode.

Strings have sane maximum lengths; emails are trimmed and lower-cased in __post_init__.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from domain.enums import FormType

EMAIL_PATTERN = r"^\s*[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\s*$"

Email = Annotated[
    str, msgspec.Meta(max_length=254, pattern=EMAIL_PATTERN, examples=["buyer@company.com"])
]
Name = Annotated[str, msgspec.Meta(max_length=200)]
Phone = Annotated[str, msgspec.Meta(max_length=50, pattern=r"^[0-9+()\-.\s/x]*$")]
Message = Annotated[str, msgspec.Meta(max_length=10_000)]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=200)]
Metadata = Annotated[dict[str, Any], msgspec.Meta(max_length=50)]


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


class Command(msgspec.Struct, rename="camel", forbid_unknown_fields=False, kw_only=True):
    def __post_init__(self) -> None:
        if hasattr(self, "email"):
            self.email: str = normalize_email(self.email)
        for field in ("name", "company_name", "phone", "message", "company"):
            if hasattr(self, field):
                setattr(self, field, _blank_to_none(getattr(self, field)))


class SubmitForm(Command):
    form_type: FormType
    email: Email
    name: Name | None = None
    company_name: Name | None = None
    phone: Phone | None = None
    message: Message | None = None
    metadata: Metadata | None = None


class Register(Command):
    name: Name
    email: Email
    password: Password
    company: Name | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.name:
            raise ValueError("name must not be blank")

    def __repr__(self) -> str:  # never print the password
        return f"Register(email={self.email!r})"


class Subscribe(Command):
    email: Email


class QuoteLineInput(msgspec.Struct, rename="camel", kw_only=True):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    quantity: Annotated[int, msgspec.Meta(gt=0, le=1_000_000)]
    name: Name | None = None
    unit: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class SubmitRfq(Command):
    email: Email
    lines: Annotated[list[QuoteLineInput], msgspec.Meta(min_length=1, max_length=200)]
    name: Name | None = None
    company_name: Name | None = None
    phone: Phone | None = None
    message: Message | None = None
