"""``python -m octanogan``: the same as the ``octanogan`` command."""

from octanogan.cli import entry_point

entry_point()
