#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")
    from django.core.management import execute_from_command_line

    from audit.context import scope

    # What a command writes is the command's in the audit trail (SPEC §5).
    with scope(actor=f"command:{sys.argv[1] if len(sys.argv) > 1 else 'help'}"):
        execute_from_command_line(sys.argv)
