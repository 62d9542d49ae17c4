"""No network for the server sequence: `rehearse` runs the packed generator as the Signate server does,
and the server gives it no network, so a generator that downloads anything must fail here too.

Linux only: a fresh network namespace (`unshare -n` as root, `unshare -rn` through a user namespace
otherwise) has only a loopback interface, and that one is down, so every connect fails with
"Network is unreachable". Where neither is allowed (e.g. inside a container without CAP_SYS_ADMIN),
a machine whose only interface is loopback (`docker run --network none`) counts as isolated too.
"""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from typing import List

PROBE_TIMEOUT_S = 30
# What a Python process prints when it needs a network it does not have (no route, no DNS, and the
# wrappers of urllib and requests). Matched only to add a hint to a failure; never to decide one.
NETWORK_ERROR = re.compile(r"(?:\[Errno -?\d+\] )?(?:Network is unreachable|Temporary failure in name resolution"
                           r"|Name or service not known|No address associated with hostname)|URLError"
                           r"|NewConnectionError|MaxRetryError")


@dataclass(frozen=True)
class NetworkIsolation:
    prefix: List[str]  # put before the child's command line
    isolated: bool
    how: str  # how it is isolated, or why it is not

    def report(self) -> str:
        if self.isolated:
            return f"rehearse: network-isolated: the server sequence runs in {self.how}, as on the server"
        return (f"rehearse: NOT network-isolated ({self.how}); a generator that needs the network passes "
                "here but fails on the server")

    def hint(self, stderr_tail: bytes) -> str:
        """A clause for the failure line when the child failed for want of a network."""
        if not self.isolated:
            return ""
        match = NETWORK_ERROR.search(stderr_tail.decode("utf-8", "replace"))
        if match is None:
            return ""
        return (f"; it tried to use the network ({match.group(0)}), which the server does not have: "
                "ship what it needs in the zip")


def network_isolation() -> NetworkIsolation:
    """The cheapest way this machine offers to run a child without a network, found by trying it."""
    reasons = []
    unshare = shutil.which("unshare")
    if unshare is None:
        reasons.append("no `unshare` command (util-linux)")
    else:
        for flags, how in ((["-n"], "a fresh network namespace (unshare -n)"),
                           (["-r", "-n"], "a fresh network namespace inside a user namespace (unshare -rn)")):
            try:
                probe = subprocess.run([unshare, *flags, "true"], stdin=subprocess.DEVNULL, capture_output=True,
                                       text=True, timeout=PROBE_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as exc:
                reasons.append(f"unshare {' '.join(flags)}: {exc}")
                continue
            if probe.returncode == 0:
                return NetworkIsolation([unshare, *flags], True, how)
            said = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
            reasons.append(f"unshare {' '.join(flags)}: {said}")
    if only_loopback():
        return NetworkIsolation([], True, "a network with no interface but loopback (e.g. docker run --network none)")
    return NetworkIsolation([], False, "; ".join(reasons))


def only_loopback() -> bool:
    """True when this process's network namespace has no interface other than loopback."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return False
    return bool(names) and all(name == "lo" for name in names)
