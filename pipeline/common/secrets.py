"""Passwords never leave the process in clear: masked in free text before it is logged or stored."""

from __future__ import annotations

import re

# scheme://user:password@ -> scheme://user:***@ ; the password may not contain "/" or spaces
# (an unencoded "/" would make the URL invalid anyway) but may contain "@". One slash is enough:
# a URL that went through a file path ("https:/user:pw@host/data.csv") still carries its password.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*:/+[^:/@\s]*):[^\s/]*@")
# libpq keyword style: password=secret or password='se cret'
_KEYWORD_PASSWORD = re.compile(r"(?i)(?P<head>\bpassword\s*=\s*)(?:'[^']*'|[^\s'&]+)")


def redact_secrets(text: str) -> str:
    """Mask passwords in free text: ``scheme://user:pw@`` URLs and ``password=...`` pairs."""
    text = _URL_PASSWORD.sub(r"\g<head>:***@", text)
    return _KEYWORD_PASSWORD.sub(r"\g<head>***", text)
