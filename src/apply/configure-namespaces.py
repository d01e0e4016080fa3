#!/usr/bin/env python3
# Configure many network namespaces from one process: enter each (setns), send its links, addresses
# and routes to the kernel over rtnetlink, load its nftables rules through libnftables (the library
# `nft` itself is built on), write its sysctls, and run `iptables-restore` where it has iptables rules
# (a masquerade NAT) and `tc -batch` where it has impairments.
#
# Why a helper: the same work done with `nsenter … ip -batch`, `nft -f` and `sysctl` costs three to
# five program starts per namespace, about 20 ms of CPU each on a small VM; here a namespace costs
# about a millisecond (a NAT's rule set four). src/apply/configure.ts starts it and falls back to the
# tools themselves where python3 or libnftables is missing.
#
# Input (stdin, JSON): {"namespaces": [{"netns", "ip": [operation…], "nft": FILE|null,
#   "iptables": FILE|null, "sysctl": [[key, value]…], "tc": FILE|null}…]}. Operations are the plan's (src/plan/operations.ts).
# Output (stdout, one JSON object per line): {"done": NETNS, "ms": {"ip", "nft", "iptables", "sysctl",
#   "tc"}} per namespace (the time each part took), or at the first failure
#   {"failed": NETNS, "tool": "ip"|"nft"|"iptables"|"sysctl"|"tc", "line": N (0-based, within that tool's lines),
#   "error": TEXT} and exit 1. Exit 3 with {"unavailable": TEXT}: this host cannot use the helper.
# Nothing it is given goes through a shell. argv[1] is the parent's pid: the helper dies with it.
import ctypes
import json
import os
import socket
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if len(sys.argv) > 1 and os.getppid() != int(sys.argv[1]):
        sys.exit(1)  # the parent died before prctl took effect
    nft = ctypes.CDLL("libnftables.so.1")
    nft.nft_ctx_new.restype = ctypes.c_void_p
    nft.nft_ctx_new.argtypes = [ctypes.c_uint32]
    nft.nft_ctx_free.argtypes = [ctypes.c_void_p]
    nft.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    nft.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    nft.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    nft.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    nft.nft_run_cmd_from_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
except (OSError, AttributeError) as error:
    emit({"unavailable": str(error)})
    sys.exit(3)


class Failure(Exception):
    def __init__(self, tool, line, error):
        super().__init__(error)
        self.tool, self.line, self.error = tool, line, error


# ---- rtnetlink ------------------------------------------------------------------------------

NETLINK_ROUTE, NETLINK_EXT_ACK, SOL_NETLINK = 0, 11, 270
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_INFO_KIND = 3, 4, 10, 18, 1
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS, IFA_F_NODAD, IFA_F_NOPREFIXROUTE = 1, 2, 8, 0x02, 0x200
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 253, 254
IFF_UP = 1


def attr(kind, data):
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * ((4 - length % 4) % 4)


def address(text):
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    return family, socket.inet_pton(family, text)


class Rtnl:
    """A route netlink socket in the namespace that was current when it was made."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.sock.bind((0, 0))
        self.seq = 0
        self.queue = []

    def close(self):
        self.sock.close()

    def request(self, kind, flags, body):
        """Queue one request; `flush` sends the queue."""
        self.queue.append((kind, flags, body))

    def flush(self):
        """Send what is queued in one write; the kernel runs it in order. Only the last request asks
        for an acknowledgement (the kernel answers a refused one anyway), so a namespace costs one
        read. Returns the index of the first refusal and the kernel's words, or None. Requests after
        a refused one may have run too (the lab is rolled back anyway)."""
        if not self.queue:
            return None
        first = self.seq + 1
        messages = []
        for position, (kind, flags, body) in enumerate(self.queue):
            self.seq += 1
            ack = NLM_F_ACK if position == len(self.queue) - 1 else 0
            messages.append(struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | ack | flags, self.seq, 0) + body)
        last = self.seq
        self.queue = []
        self.sock.sendall(b"".join(messages))
        failure = None
        while True:
            data = self.sock.recv(1 << 20)
            offset = 0
            while offset + 16 <= len(data):
                length, msg_type, msg_flags, seq, _ = struct.unpack_from("=IHHII", data, offset)
                if length < 16:
                    raise OSError("malformed netlink reply")
                if msg_type == NLMSG_ERROR and first <= seq <= last:
                    (code,) = struct.unpack_from("=i", data, offset + 16)
                    if code != 0 and failure is None:
                        failure = (seq - first, -code, self.describe(-code, data[offset : offset + length], msg_flags))
                    if seq == last:
                        return failure
                offset += (length + 3) & ~3

    @staticmethod
    def describe(code, message, flags):
        # With extended acks the kernel names the problem ("Nexthop has invalid gateway").
        text = None
        if flags & NLM_F_ACK_TLVS:
            # nlmsghdr, error, the request's header (and its payload unless capped), then attributes.
            (request_length,) = struct.unpack_from("=I", message, 20)
            offset = 20 + (16 if flags & NLM_F_CAPPED else (request_length + 3) & ~3)
            while offset + 4 <= len(message):
                length, kind = struct.unpack_from("=HH", message, offset)
                if length < 4:
                    break
                if kind & 0x3FFF == 1:  # NLMSGERR_ATTR_MSG
                    text = message[offset + 4 : offset + length].split(b"\0")[0].decode(errors="replace")
                offset += (length + 3) & ~3
        return f"Error: {text}." if text else f"RTNETLINK answers: {os.strerror(code)}"


def ifindex(name):
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise OSError(19, f'Cannot find device "{name}"')


def link_message(index, flags=0, change=0, attrs=b""):
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change) + attrs


def ip_operation(rtnl, op):
    kind = op["op"]
    if kind == "link-up":
        rtnl.request(RTM_NEWLINK, 0, link_message(ifindex(op["iface"]), IFF_UP, IFF_UP))
    elif kind == "link-mtu":
        rtnl.request(RTM_NEWLINK, 0, link_message(ifindex(op["iface"]), attrs=attr(IFLA_MTU, struct.pack("=I", op["mtu"]))))
    elif kind == "link-master":
        master = ifindex(op["master"])
        rtnl.request(RTM_NEWLINK, 0, link_message(ifindex(op["iface"]), attrs=attr(IFLA_MASTER, struct.pack("=I", master))))
    elif kind in ("bridge-add", "dummy-add"):
        info = attr(IFLA_INFO_KIND, b"bridge" if kind == "bridge-add" else b"dummy")
        body = link_message(0, attrs=attr(IFLA_IFNAME, op["iface"].encode() + b"\0") + attr(IFLA_LINKINFO, info))
        rtnl.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)
    elif kind == "address-add":
        text, prefix = op["cidr"].split("/")
        family, packed = address(text)
        scope = RT_SCOPE_HOST if family == socket.AF_INET and text.startswith("127.") else RT_SCOPE_UNIVERSE
        flags = (IFA_F_NOPREFIXROUTE if op.get("noPrefixRoute") else 0) | (IFA_F_NODAD if op.get("nodad") else 0)
        body = struct.pack("=BBBBI", family, int(prefix), flags & 0xFF, scope, ifindex(op["iface"]))
        body += attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
        if flags:
            body += attr(IFA_FLAGS, struct.pack("=I", flags))
        rtnl.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)
    elif kind == "route-add":
        to, via = op["to"], op.get("via")
        family, destination, length = socket.AF_INET, b"", 0
        if to != "default":
            text, _, bits = to.partition("/")
            family, destination = address(text)
            length = int(bits) if bits else len(destination) * 8
        elif via:
            family = address(via)[0]
        attrs = attr(RTA_DST, destination) if length else b""
        if via:
            attrs += attr(RTA_GATEWAY, address(via)[1])
        attrs += attr(RTA_OIF, struct.pack("=I", ifindex(op["dev"])))
        scope = RT_SCOPE_UNIVERSE if via else RT_SCOPE_LINK
        body = struct.pack("=BBBBBBBBI", family, length, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0) + attrs
        rtnl.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)
    else:
        raise OSError(22, f"unknown operation {kind}")


# ---- one namespace ---------------------------------------------------------------------------


def enter(netns):
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise Failure("ip", None, f"setns {netns}: {os.strerror(code)}")
    finally:
        os.close(fd)


def load_rules(path):
    ctx = nft.nft_ctx_new(0)
    if not ctx:
        raise Failure("nft", None, "libnftables: cannot create a context")
    try:
        nft.nft_ctx_buffer_output(ctx)
        nft.nft_ctx_buffer_error(ctx)
        if nft.nft_run_cmd_from_filename(ctx, path.encode()) != 0:
            text = (nft.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace").strip()
            raise Failure("nft", None, text or "nft failed")
    finally:
        nft.nft_ctx_free(ctx)


def write_sysctls(settings):
    for index, (key, value) in enumerate(settings):
        # sysctl(8) names: dots separate, slashes stand for dots inside a name (eth0.5).
        path = "/proc/sys/" + key.translate(str.maketrans("./", "/."))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError as error:
            raise Failure("sysctl", index, f"sysctl: cannot set {key}: {error.strerror}")


def run_tc(path):
    import subprocess

    result = subprocess.run(["tc", "-batch", path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise Failure("tc", None, result.stderr.strip() or f"tc exited {result.returncode}")


def run_iptables(path):
    import re
    import subprocess

    result = subprocess.run(["iptables-restore", path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        # iptables-nft: "Error occurred at line: N"; legacy: "iptables-restore: line N failed".
        found = re.search(r"Error occurred at line: (\d+)|line (\d+) failed", result.stderr)
        line = int(found.group(1) or found.group(2)) - 1 if found else None
        words = [text for text in result.stderr.splitlines() if text.strip() and not text.startswith(("#", "Try `"))]
        raise Failure("iptables", line, "\n".join(words) or f"iptables-restore exited {result.returncode}")


def configure(namespace):
    """Configure one namespace; returns the milliseconds each tool's part took (a profile for `up --json`)."""
    clock = time.perf_counter
    started = clock()
    enter(namespace["netns"])
    rtnl = Rtnl()
    try:
        ops = namespace["ip"]
        # Links created here (bridges, dummies) first, so that later requests can name them by index.
        created = [index for index, op in enumerate(ops) if op["op"] in ("bridge-add", "dummy-add")]
        for batch in (created, [index for index in range(len(ops)) if index not in created]):
            for index in batch:
                try:
                    ip_operation(rtnl, ops[index])
                except OSError as error:
                    rtnl.flush()
                    raise Failure("ip", index, error.strerror or str(error))
            refused = rtnl.flush()
            if refused:
                position, _, words = refused
                raise Failure("ip", batch[position], words)
    finally:
        rtnl.close()
    ip_done = clock()
    if namespace.get("nft"):
        load_rules(namespace["nft"])
    nft_done = clock()
    if namespace.get("iptables"):
        run_iptables(namespace["iptables"])
    iptables_done = clock()
    write_sysctls(namespace.get("sysctl", []))
    sysctl_done = clock()
    if namespace.get("tc"):
        run_tc(namespace["tc"])
    tc_done = clock()
    ms = lambda a, b: round((b - a) * 1000, 3)
    return {"ip": ms(started, ip_done), "nft": ms(ip_done, nft_done), "iptables": ms(nft_done, iptables_done), "sysctl": ms(iptables_done, sysctl_done), "tc": ms(sysctl_done, tc_done)}


def main():
    job = json.load(sys.stdin)
    for namespace in job["namespaces"]:
        try:
            spent = configure(namespace)
        except Failure as failure:
            emit({"failed": namespace["netns"], "tool": failure.tool, "line": failure.line, "error": failure.error})
            return 1
        except OSError as error:
            emit({"failed": namespace["netns"], "tool": "ip", "line": None, "error": str(error)})
            return 1
        emit({"done": namespace["netns"], "ms": spent})
    return 0


if __name__ == "__main__":
    sys.exit(main())
