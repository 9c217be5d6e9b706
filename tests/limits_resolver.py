"""Probe pydev against a DNS server that never answers, in this process, and
report what the probe left running. Run by tests/test_limits.py inside
private mount and network namespaces whose /etc/resolv.conf names the silent
server this script starts on 127.0.0.1:53; never imported by the suite.

``argv[1]``: how many times to probe (the first directly, the rest as
refreshes of the /healthcheck backend's Refresher). Prints one JSON object.
"""

import json
import os
import socket
import sys
import threading
import time

import psutil

from glance_features import runner
from glance_features.healthcheck import Refresher
from glance_features.settings import Settings

TIMEOUT = 0.5

# Bound and never read: every query waits for an answer that never comes.
silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
silent.bind(("127.0.0.1", 53))
silent_tcp = socket.socket()
silent_tcp.bind(("127.0.0.1", 53))
silent_tcp.listen(64)

settings = Settings(pydev_worker_debug_host="debugger.glance-features.test")
baseline = {t.ident for t in threading.enumerate()}
first = runner.probe(settings, features=["pydev"], timeout=TIMEOUT)

refresher = Refresher(lambda: settings, interval=1e-6, timeout=TIMEOUT)
refreshes = int(sys.argv[1]) - 1
for _ in range(refreshes):
    refresher._refresh()  # what each stale /healthcheck request starts, one after another
last = refresher.current()  # and one started the way a request starts it
while refresher._running_in is not None:
    time.sleep(0.05)


def leftovers() -> list[str]:
    return [
        t.name
        for t in threading.enumerate()
        if t.ident not in baseline and t.is_alive() and t is not threading.current_thread()
    ]


# A thread that has set its result may still be returning: give it a moment.
for thread in threading.enumerate():
    if thread.ident not in baseline and thread is not threading.current_thread():
        thread.join(2.0)
children = [" ".join(p.cmdline()) for p in psutil.Process(os.getpid()).children(recursive=True)]
print(
    json.dumps(
        {
            "status": first["pydev"].status.value,
            "reason": first["pydev"].reason,
            "last_reason": refresher._snapshot.report["pydev"].reason
            if refresher._snapshot.report
            else None,
            "threads": leftovers(),
            "children": children,
            "refreshes": refreshes + 1,
        }
    )
)
