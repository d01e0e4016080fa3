#!/usr/bin/env python3
# One program, four phones: each runs this same file and finds who it is and whom to greet in its
# own /etc/peer.conf (placed by the topology), keeps its state in its own /srv/peer and its pid in
# its own /tmp — the same paths on every phone, no trampling, and the host's /etc, /srv and /tmp
# never change. A UDP greeting to its peer every 200 ms; what it hears goes to /srv/peer/received.
import os, socket, time

conf = dict(line.split(" = ", 1) for line in open("/etc/peer.conf").read().splitlines() if " = " in line)
name, peer, port = conf["name"], conf["peer"], int(conf.get("port", "9000"))
os.makedirs("/srv/peer", exist_ok=True)
with open("/tmp/peer.pid", "w") as out:
    out.write(f"{os.getpid()}\n")
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", port))
sock.settimeout(0.2)
sent = 0
while True:
    sent += 1
    sock.sendto(f"hello from {name} #{sent}".encode(), (peer, port))
    with open("/srv/peer/sent", "w") as out:
        out.write(f"{sent}\n")
    try:
        data, source = sock.recvfrom(2048)
        with open("/srv/peer/received", "a") as out:
            out.write(f"{data.decode(errors='replace')} ({source[0]})\n")
    except socket.timeout:
        pass
    time.sleep(0.2)
