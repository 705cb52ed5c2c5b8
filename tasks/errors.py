"""One line, not a traceback, for the errors a person fixes in their data or settings; and no
password in anything Luigi logs."""

from __future__ import annotations

import logging
import re
import sys
import traceback

from pipeline.common.secrets import redact_secrets
from pipeline.errors import DataError
from pipeline.store.database import DatabaseUnavailable

EXPECTED_ERRORS = (DataError, DatabaseUnavailable)

# Luigi logs an exception raised by complete() or requires() as a message holding the formatted
# traceback (worker._log_complete_error / _log_dependency_error), not as exc_info.
_SCHEDULING_FAILURE = re.compile(r"(?s)\A(?P<head>Will not run .*? due to error in \w+\(\) method):\n(?P<tb>.*)\Z")
# The traceback's last line: "package.module.ErrorClass: message".
_LAST_LINE = re.compile(r"\A(?P<module>[A-Za-z_][\w.]*)\.(?P<name>[A-Za-z_]\w*)(?::\s?(?P<message>.*))?\Z")


class OneLineLogErrors(logging.Filter):
    """Luigi logs a failed task with its traceback; for expected errors the message is enough.

    Every record also has its passwords masked (``scheme://user:***@``, ``password=***``),
    traceback included: a URL with a password may sit in an error message or a parameter.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        message = redact_secrets(record.getMessage())
        if isinstance(error, EXPECTED_ERRORS):
            message = f"{message}: {redact_secrets(str(error))}"
            record.exc_info = record.exc_text = None
        elif record.exc_info:
            # Formatted here, masked, and cached where Formatter.format looks for it first.
            record.exc_text = redact_secrets("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        else:
            message = _shorten_scheduling_failure(message)
        record.msg = message
        record.args = None
        return True


def _shorten_scheduling_failure(message: str) -> str:
    """'Will not run X ... method:' and the traceback's last line, when that is an expected error."""
    match = _SCHEDULING_FAILURE.match(message)
    if match is None:
        return message
    lines = match["tb"].rstrip().splitlines()
    # The exception line is the last one at column 0 (frames are indented); a message of
    # several lines continues below it.
    for index in range(len(lines) - 1, -1, -1):
        last = _LAST_LINE.match(lines[index]) if lines[index][:1].strip() else None
        if last is not None:
            break
    else:
        return message
    if not _is_expected(last["module"], last["name"]):
        return message
    text = " ".join(line.strip() for line in [last["message"] or "", *lines[index + 1 :]] if line.strip())
    return f"{match['head']}: {text or last['name']}"


def _is_expected(module: str, name: str) -> bool:
    error_class = getattr(sys.modules.get(module), name, None)
    return isinstance(error_class, type) and issubclass(error_class, EXPECTED_ERRORS)


DATABASE_UNUSABLE = 2  # docs/nightly.md, exit codes: the configuration or the database cannot be used


def exit_code(error: BaseException) -> int | None:
    """The exit code an error asks for (a partial or missing night, a database that cannot be
    used), or None for Luigi's own."""
    if isinstance(error, DatabaseUnavailable):
        return DATABASE_UNUSABLE
    code = getattr(error, "exit_code", None)
    return code if isinstance(code, int) else None


def install() -> None:
    logger = logging.getLogger("luigi-interface")
    if not any(isinstance(f, OneLineLogErrors) for f in logger.filters):
        logger.addFilter(OneLineLogErrors())
