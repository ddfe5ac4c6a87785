#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clm.settings")
    # manage.py is the developer's entry point: without DEBUG set it runs in development mode. The servers
    # (clm.wsgi, clm.asgi, the Celery app) keep DEBUG off and refuse to start without SECRET_KEY; production
    # sets DEBUG=0 explicitly (docker-compose.yml), which makes manage.py strict as well.
    os.environ.setdefault("DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
