#!/usr/bin/env python3
# A minimal listen/dial pair for `testbed test` (any program works; this one is 30 lines of Python):
# the listener echoes UDP datagrams; the dialer sends to its peer's address, waits for the echo,
# prints one JSON line with what it measured and exits 0, or exits 1 when no echo came.
# testbed tells each side its role and its peer: TESTBED_ROLE, TESTBED_PEER, TESTBED_PEER_ADDR.
import json, os, socket, sys, time

PORT = int(os.environ.get("ECHO_PORT", "9999"))
role, peer, address = os.environ["TESTBED_ROLE"], os.environ["TESTBED_PEER"], os.environ["TESTBED_PEER_ADDR"]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

if role == "listen":
    sock.bind(("0.0.0.0", PORT))
    while True:
        data, source = sock.recvfrom(2048)
        sock.sendto(data, source)

sock.settimeout(0.2)
started = time.monotonic()
deadline = started + float(os.environ.get("ECHO_TIMEOUT", "1"))
while time.monotonic() < deadline:
    try:
        sock.sendto(b"hello from " + socket.gethostname().encode(), (address, PORT))
        data, source = sock.recvfrom(2048)
        print(json.dumps({"peer": peer, "rtt_ms": round((time.monotonic() - started) * 1000, 2), "reply_from": f"{source[0]}:{source[1]}"}))
        sys.exit(0)
    except (socket.timeout, ConnectionRefusedError):
        pass
print(f"no echo from {peer} at {address}:{PORT}", file=sys.stderr)
sys.exit(1)
