"""One line, not a traceback, for the errors a person fixes in their data or settings."""
from __future__ import annotations

import logging

from pipeline.database import DatabaseUnavailable
from pipeline.errors import DataError

EXPECTED_ERRORS = (DataError, DatabaseUnavailable)


class OneLineErrors(logging.Filter):
    """Luigi logs a failed task with its traceback; for expected errors the message is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, EXPECTED_ERRORS):
            record.msg = f"{record.getMessage()}: {error}"
            record.args = None
            record.exc_info = record.exc_text = None
        return True


def install() -> None:
    logger = logging.getLogger("luigi-interface")
    if not any(isinstance(f, OneLineErrors) for f in logger.filters):
        logger.addFilter(OneLineErrors())
