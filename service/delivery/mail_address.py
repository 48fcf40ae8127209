"""Email addresses the service accepts: plain ASCII addr-specs, nothing a mail parser can unfold.

An address becomes a ``To`` header and an SMTP envelope recipient. Python's
``email`` package decodes an RFC 2047 encoded word it finds in an address
(``=?UTF-8?Q?=0ABcc:…?=``) and, before the fix for CVE-2024-6923, writes the
decoded newline into the header as it is: one subscriber could make every
alert mail go to someone else too. So the accepted form is deliberately
narrow: ``local@domain``, the local part a dot-atom of RFC 5322 (letters,
digits and ``!#$%&'*+-/=?^_`{|}~``, dots between them) with no ``=?`` in it,
the domain host names of letters, digits and hyphens with a top-level name of
letters. No quoted local parts, comments, display names, IP literals or
non-ASCII: none is needed to receive alerts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.text import quote

MAX_ADDRESS_CHARS = 254
MAX_LOCAL_CHARS = 64

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$")


@dataclass(frozen=True, slots=True)
class EmailAddress:
    """A checked address, in its two parts."""

    local: str
    domain: str

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


def parse_email_address(text: str) -> EmailAddress:
    """``text`` as an :class:`EmailAddress`, or :class:`ValueError` saying what is wrong."""
    shown = quote(text[:80])
    if len(text) > MAX_ADDRESS_CHARS:
        raise ValueError(f"{shown} is longer than an email address can be")
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{shown} is not an email address (expected name@example.com)")
    if len(local) > MAX_LOCAL_CHARS or not _LOCAL.match(local):
        raise ValueError(
            f"{shown} is not a plain email address: the part before @ may hold letters, "
            "digits, dots and !#$%&'*+-/=?^_`{|}~"
        )
    if "=?" in local:
        raise ValueError(f"{shown} is not a plain email address: it holds an encoded word (=?)")
    if len(domain) > 253 or not _DOMAIN.match(domain):
        raise ValueError(f"{shown} is not an email address: {quote(domain[:60])} is no mail domain")
    return EmailAddress(local, domain)


def email_address_problem(text: str) -> str | None:
    """Why ``text`` is not an address the service accepts (``None``: it is one)."""
    try:
        parse_email_address(text)
    except ValueError as error:
        return str(error)
    return None
