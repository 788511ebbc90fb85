"""Errors an institution meets when its data does not fit the task."""


class DataError(ValueError):
    """A local data file cannot be used; the message names the file, the column and the fix."""
