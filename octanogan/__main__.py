"""``python -m octanogan``: the same as the ``octanogan`` command."""

from octanogan.cli import app

app(prog_name="octanogan")
