"""The exception types the CLI turns into a single line (no traceback)."""


class UserError(Exception):
    """Bad input from the user: a file, a value or an option. The message names the file and the problem."""

    def __init__(self, message: str, path=None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class SkipModel(Exception):
    """A model that cannot run here (e.g. its checkpoint is missing): reported in one line, recorded, skipped."""


class RunAborted(Exception):
    """The run stopped for a reason outside its input (e.g. a metric worker killed by the OS): one
    line, a non-zero exit other than 2; what finished is committed, so a rerun resumes."""
