"""The application's settings for the test suite: the same as production reads them, with a key only tests
use (the app refuses to start without LAGESBILD_SECRET_KEY)."""

import os

os.environ.setdefault("LAGESBILD_SECRET_KEY", "tests-only-not-a-secret")

from lagesbild.settings import *  # noqa: F403
