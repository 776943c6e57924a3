"""Container health probe: exit 0 when ``GET http://127.0.0.1:<port><path>`` answers 2xx.

Run as ``python -I -S /opt/lab/healthcheck.py PORT PATH`` by compose.yaml's healthchecks.
Plain sockets and no site import keep one probe near 20 ms of CPU: a dozen containers
probing every few seconds must not disturb latency measurements on a 2-core machine.
(There is no curl in the minbase image, and there need not be.)
"""

import socket
import sys


def main() -> int:
    port, path = int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "/"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = s.recv(64).decode("latin-1")
    except OSError as exc:
        print(f"unhealthy: {exc}")
        return 1
    parts = head.split(" ", 2)
    ok = len(parts) >= 2 and parts[1].startswith("2")
    print(head.splitlines()[0] if head else "unhealthy: empty reply")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
