"""The `lagesbild` command: Django's manage commands under one name.

`lagesbild demo`, `lagesbild createforum`, `lagesbild createuser`, `lagesbild token create EMAIL` and all of
Django's own commands (migrate, runserver, ...) go through here.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lagesbild.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["lagesbild", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
