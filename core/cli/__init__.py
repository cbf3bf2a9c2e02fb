"""Command-line interface. Importing this package registers every sub-command."""

from __future__ import annotations

from tandem.cli import agent as _agent  # noqa: F401  (registers `agent run|status|approve|deny`)
from tandem.cli import analyze as _analyze  # noqa: F401  (registers `analyze`)
from tandem.cli import campaign as _campaign  # noqa: F401  (registers `campaign`, `demo`, `report`)
from tandem.cli import campaign_check as _campaign_check  # noqa: F401  (registers `campaign check`)
from tandem.cli import catalog as _catalog  # noqa: F401  (registers `serve`, `runs`)
from tandem.cli import data_keys as _data_keys  # noqa: F401  (registers `data keys issue|list|revoke`)
from tandem.cli import map as _map  # noqa: F401  (registers `map`)
from tandem.cli import recipe as _recipe  # noqa: F401  (registers `recipe`)
from tandem.cli import shell as _shell  # noqa: F401  (registers `shell`)
from tandem.cli import station as _station  # noqa: F401  (registers `station start|status|stop`)
from tandem.cli.app import app
from tandem.cli.output import degrade_unencodable_output


def main() -> None:
    # a terminal that cannot show "µ" gets "u", not a UnicodeEncodeError
    degrade_unencodable_output()
    app()


__all__ = ["app", "main"]
