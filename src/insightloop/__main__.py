"""``python -m insightloop``: the same command line as the ``insightloop`` script."""

from insightloop.cli.main import app

app(prog_name="insightloop")
