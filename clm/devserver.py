"""`make run`: web, worker and beat under honcho, with a grace period a stopping worker fits in.

Honcho kills a process that has not exited 5 s after SIGTERM; a Celery worker on the filesystem broker takes about
6 s to stop even when idle, so Ctrl-C would end in a SIGKILL. 15 s lets it stop cleanly.
"""

import sys

import honcho.manager
from honcho.command import main

honcho.manager.KILL_WAIT = 15

if __name__ == "__main__":
    sys.exit(main())
