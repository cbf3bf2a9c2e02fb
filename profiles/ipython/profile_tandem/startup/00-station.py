"""Open the station the environment names, for the life of this IPython process.

Environment (`tandem shell` sets it from its options):

* ``TANDEM_STATION`` — the station id of the campaign, e.g. ``saxs`` (required)
* ``TANDEM_SIM`` — ``true``: the digital twin; ``false``: EPICS hardware
* ``TANDEM_CAMPAIGN`` — the campaign file (stations, decks, scan defaults); the bundled demo by default
* ``TANDEM_DATA`` — folder of the Tiled store, the plots and the IPython history
* ``TANDEM_TILED_URI`` and ``TANDEM_TILED_API_KEY`` — attach to a running Tiled server instead
* ``TANDEM_STATION_PREFIX``, ``TANDEM_CELL_LOADER_PREFIX`` — PV prefixes on EPICS; each wins over
  the station's instrument profile's, which wins over tandem's default (``TANDEM:SAXS:``)

On EPICS, a station whose profile says ``backend: epics`` pipettes with the robot its profile
names (PyLabRobot); the session opens only once every PV and the robot answer.

What the session starts (IOCs, a Tiled server) is stopped when IPython exits.
"""


def _open_station() -> None:
    import atexit
    import contextlib
    import logging
    import sys
    import threading

    # pyFAI's silx announces at import that OpenCL is missing; reduction runs on the CPU by design
    logging.getLogger("silx.opencl.common").setLevel(logging.ERROR)

    from IPython import get_ipython

    from tandem.campaign.session import open_station_session
    from tandem.campaign.session_config import SessionSettings
    from tandem.errors import TandemError

    shell = get_ipython()
    try:
        settings = SessionSettings.from_environment()
        stack = contextlib.ExitStack()
        # a session that fails to open stops what it started itself (its own exit stack)
        session = stack.enter_context(
            open_station_session(
                settings.station,
                campaign=settings.campaign,
                sim=settings.sim,
                data_directory=settings.data,
                # EPICS: each prefix given here wins over the station's profile's; on the twin a cell loader's
                # prefix would name an IOC already running, and the session starts its own
                station_prefix=settings.station_prefix,
                cell_loader_prefix=None if settings.sim else settings.cell_loader_prefix,
                interactive=True,
            )
        )
    except TandemError as exc:
        # a configuration error is the user's to fix: say what, without a traceback
        print(f"tandem: the station session did not open:\n{exc}", file=sys.stderr)
        return
    # Closed as the interpreter starts to shut down, before it joins its threads and well before
    # atexit handlers run: the IOCs the session started die with the thread that forked them
    # (tandem.child_processes' spawner, a thread pool's, ended by that join), and must outlive
    # libca's circuits to them, or libca prints "Unexpected problem with CA circuit" on the way out.
    # `threading._register_atexit` is how concurrent.futures itself runs first; atexit otherwise.
    register = getattr(threading, "_register_atexit", atexit.register)
    register(stack.close)
    shell.user_ns.update(session.namespace())
    print(session.banner())


_open_station()
del _open_station
