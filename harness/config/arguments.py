"""Command-line parsing whose mistakes are one line, like every other bad input of the tool."""
from __future__ import annotations

import argparse

from harness.errors import UserError


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors raised as a UserError (printed as one line by the CLI, exit 2)
    instead of the usage block and a second line."""

    def error(self, message):
        command = self.prog.removeprefix("zeg-eval").strip()
        raise UserError(f"{command + ': ' if command else ''}{message} (see {self.prog} --help)")


def at_least(minimum: int):
    """An argparse type: an integer >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, not '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, not {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse
