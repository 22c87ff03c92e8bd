"""Who holds a queue's lease: host, process and PID namespace, and whether that process is gone."""

from __future__ import annotations

import os
import socket


def _pid_namespace() -> str:
    # Host-network containers share the hostname but not the pid space; a pid means nothing
    # outside its own namespace, so it is part of the identity.
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def holder_id(run_id: str) -> str:
    """`host:pid:run_id:pidns` — readable in `status` and in a `lease_held` record."""
    return f"{socket.gethostname()}:{os.getpid()}:{run_id}:{_pid_namespace()}"


def holder_is_dead(holder: str) -> bool:
    """True only when `holder` is a process of this host and pid namespace that no longer runs."""
    parts = holder.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname() or parts[3] != _pid_namespace():
        return False
    if not parts[1].isdigit() or int(parts[1]) == os.getpid():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False
