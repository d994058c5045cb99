"""Pathname expansion for unquoted `*`, `?` and `[...]`, done the way the shell would do it.

We never run a shell, but `du -sh /*` or `cat /sys/block/*/queue/scheduler` are what an SRE types,
so the policy expands globs itself (sorted, hidden files only for patterns starting with `.`,
no match leaves the word as written) and judges the paths that will actually be read.
Relative patterns expand against the executor's working directory, `/`.
"""

from __future__ import annotations

import glob
from itertools import islice

from worker.policy.lexer import Word

MAX_GLOB_PATHS = 4096
MAX_WILDCARD_LEVELS = 3  # `/*/*/*/*/x` would walk most of the file system before answering
WORKING_DIRECTORY = "/"


class TooManyPaths(ValueError):
    """A glob matched, or could walk, more paths than a command line should carry."""


def expand_word(word: Word) -> list[str]:
    """The argv elements one word becomes."""
    if not word.unquoted_glob:
        return [word.text]
    levels = sum(1 for part in word.pattern.split("/") if glob.has_magic(part))
    if levels > MAX_WILDCARD_LEVELS:
        raise TooManyPaths(
            f"{word.text!r} has wildcards at {levels} directory levels (at most "
            f"{MAX_WILDCARD_LEVELS})"
        )
    matches = list(islice(glob.iglob(word.pattern, root_dir=WORKING_DIRECTORY), MAX_GLOB_PATHS + 1))
    if len(matches) > MAX_GLOB_PATHS:
        raise TooManyPaths(f"{word.text!r} matches more than {MAX_GLOB_PATHS} paths")
    return sorted(matches) if matches else [word.text]
