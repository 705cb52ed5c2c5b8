"""Errors that stop a run with one line a person can act on, not a traceback."""


class DataError(ValueError):
    """The input cannot be used: the message names the file, the column and the rows."""
