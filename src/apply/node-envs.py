#!/usr/bin/env python3
# Give many nodes their own mount and UTS namespaces from one process — the lecture's OverlayFS
# lesson, applied. Each node's mount namespace is copied from one template (the host's, without
# the namespaces and layers other labs and nodes keep under /run: copies would keep them alive, and
# copying them for every node is quadratic). In it, a tmpfs of the node's disk size holds an upper
# and a work directory per private directory (the files the topology places are written into the
# upper layer first); an OverlayFS is mounted over each private directory (the host's directory is
# the read-only lower layer); the lab's hosts and resolv.conf are bound over /etc's, and /sys shows
# the node's interfaces. A copy of the tmpfs mount goes to the host's namespace (open_tree and
# move_mount), under the lab's folder, where `testbed diff` reads the upper layers. The namespaces
# are kept by bind mounts of their nsfs files (`NODE.mnt`, `NODE.uts`), as `unshare --mount=FILE`
# keeps them, so that every process of the node (programs, exec, shell, agents) enters the same.
#
# Why a helper: `unshare … sh -c` with a `mount` per layer costs five to ten program starts per
# node (about 100 ms on a small VM); here a node costs about a millisecond. node-env.ts starts it
# and does the same with those programs where python3 is missing.
#
# Input (stdin, JSON): {"folder": the lab's folder of node namespaces to make a private mount first,
#   or null, "roots": the folders whose mounts no node keeps a copy of (/run/netns, testbed's run
#   folder), "nodes": [{"node", "netns", "uts", "mnt", "hostname", "hosts", "resolv",
#   "fs": null | {"tmpfs", "size", "name", "dirs": [{"path", "upper", "work"}],
#   "files": [{"path", "dir", "relative", "upper_root", "text" | "from", "mode"}]}}]}
# (render/container.ts writes it: `dir` is the private directory a file is in, `relative` its path
# there, `upper_root` that directory's upper layer).
# Output (stdout, one JSON object per line): {"done": NODE, "ms": MILLISECONDS} per node, or at the first failure
#   {"failed": NODE, "step": TEXT, "error": TEXT} and exit 1; {"unavailable": TEXT} and exit 3 on a
#   kernel without the mount API (Linux 5.2), before anything is made.
# argv[1] is the parent's pid: the helper dies with it. Nothing it is given goes through a shell.
import ctypes
import json
import os
import re
import shutil
import sys
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWNET = 0x00020000, 0x04000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
# The mount API of Linux 5.2 (the same numbers on every architecture): a copy of a mount as a file
# descriptor, attached again in another mount namespace.
SYS_OPEN_TREE, SYS_MOVE_MOUNT = 428, 429
OPEN_TREE_CLONE, O_CLOEXEC, MOVE_MOUNT_F_EMPTY_PATH, AT_FDCWD = 1, 0o2000000, 4, -100

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.syscall.restype = ctypes.c_long


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


class Failure(Exception):
    def __init__(self, step, error):
        super().__init__(error)
        self.step, self.error = step, error


def check(result, step):
    if result != 0:
        raise Failure(step, os.strerror(ctypes.get_errno()))


def enc(text):
    return None if text is None else text.encode()


def mount(source, target, fstype, flags, data, step):
    check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), step)


def setns(fd, kind, step):
    check(libc.setns(fd, kind), step)


def make_dirs_like(upper_root, relative_dir, lower_root):
    """Create upper_root/relative_dir, each new level with the owner and mode of the host's
    directory it stands for (a merged directory shows the upper's attributes)."""
    path, lower = upper_root, lower_root
    for part in [p for p in relative_dir.split("/") if p]:
        path, lower = os.path.join(path, part), os.path.join(lower, part)
        if os.path.isdir(path):
            continue
        os.mkdir(path, 0o755)
        try:
            stat = os.stat(lower)
            os.chown(path, stat.st_uid, stat.st_gid)
            os.chmod(path, stat.st_mode & 0o7777)
        except OSError:
            pass


def prepare_layers(fs):
    """The node's tmpfs, mounted in its own mount namespace (no other node's namespace copies it), its layers, its files."""
    mount(fs["name"], fs["tmpfs"], "tmpfs", MS_NOSUID | MS_NODEV, "size=%d,mode=0755" % fs["size"], "mount tmpfs " + fs["tmpfs"])
    for layer in fs["dirs"]:
        for path in (layer["upper"], layer["work"]):
            os.makedirs(path, mode=0o755, exist_ok=True)
        # The upper directory's attributes are the merged directory's: the host's.
        try:
            stat = os.stat(layer["path"])
            os.chown(layer["upper"], stat.st_uid, stat.st_gid)
            os.chmod(layer["upper"], stat.st_mode & 0o7777)
        except OSError as error:
            raise Failure("private directory " + layer["path"], error.strerror)
    for file in fs["files"]:
        try:
            upper_root, relative = file["upper_root"], file["relative"]
            make_dirs_like(upper_root, os.path.dirname(relative), file["dir"])
            target = os.path.join(upper_root, relative)
            if "text" in file:
                with open(target, "w", encoding="utf-8") as out:
                    out.write(file["text"])
            else:
                shutil.copyfile(file["from"], target)
            os.chmod(target, file["mode"])
        except OSError as error:
            raise Failure("file " + file["path"], error.strerror or str(error))


def unescape(field):
    """A mountinfo field: octal escapes (\\040) decoded; bytes that are not UTF-8 kept as they are."""
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field).decode("utf-8", "surrogateescape")


def mount_points():
    """(mount point, filesystem type) of this mount namespace."""
    found = []
    with open("/proc/self/mountinfo", "rb") as info:
        for line in info:
            fields = line.split(b" ")
            found.append((unescape(fields[4]), fields[fields.index(b"-") + 1].decode("ascii", "replace")))
    return found


def under(point, roots):
    return any(point == root or point.startswith(root + "/") for root in roots)


def make_template(roots):
    """A mount namespace to copy every node's from: the host's, private, without its copies of the
    namespaces and layers kept under /run/netns and /run/testbed (they would keep them alive). Made
    once: a node's namespace copied from the host's would copy every namespace and layer made
    before it — quadratic in the lab's size."""
    check(libc.unshare(CLONE_NEWNS), "unshare the template mount namespace")
    mount(None, "/", None, MS_REC | MS_PRIVATE, None, "make / private")
    points = {point for point, _ in mount_points() if under(point, roots)}
    # The topmost ones: one detach takes every mount below it.
    for point in sorted(p for p in points if not any(p.startswith(q + "/") for q in points)):
        check(libc.umount2(os.fsencode(point), MNT_DETACH), "detach the template's copy of " + point)
    return os.open("/proc/self/ns/mnt", os.O_RDONLY)


def make_env(job, home_mnt, home_uts, template):
    netns = os.open(job["netns"], os.O_RDONLY)  # in the host's namespace: the template has no /run/netns
    try:
        setns(netns, CLONE_NEWNET, "enter network namespace " + job["netns"])
    finally:
        os.close(netns)
    setns(template, CLONE_NEWNS, "enter the template mount namespace")
    check(libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare mount and UTS namespaces")
    layers = None
    try:
        name = job["hostname"].encode()
        check(libc.sethostname(name, len(name)), "hostname")
        fs = job["fs"]
        if fs:
            prepare_layers(fs)
            for layer in fs["dirs"]:
                options = "lowerdir=%s,upperdir=%s,workdir=%s" % (layer["path"], layer["upper"], layer["work"])
                mount("testbed", layer["path"], "overlay", 0, options, "mount overlay on " + layer["path"])
            # A copy of the layers' mount for the host (where `testbed diff` reads them); the node's
            # own goes from its view (each overlay keeps its own reference).
            layers = libc.syscall(SYS_OPEN_TREE, AT_FDCWD, fs["tmpfs"].encode(), OPEN_TREE_CLONE | O_CLOEXEC)
            if layers < 0:
                raise Failure("open_tree " + fs["tmpfs"], os.strerror(ctypes.get_errno()))
            libc.umount2(fs["tmpfs"].encode(), MNT_DETACH)
        mount(job["hosts"], "/etc/hosts", None, MS_BIND, None, "bind /etc/hosts")
        mount(job["resolv"], "/etc/resolv.conf", None, MS_BIND, None, "bind /etc/resolv.conf")
        libc.mount(b"sysfs", b"/sys", b"sysfs", 0, None)  # the node's interfaces in /sys; not fatal
        own_mnt = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        own_uts = os.open("/proc/self/ns/uts", os.O_RDONLY)
    finally:
        setns(home_mnt, CLONE_NEWNS, "return to the host's mount namespace")
        setns(home_uts, CLONE_NEWUTS, "return to the host's UTS namespace")
    try:
        if layers is not None:
            moved = libc.syscall(SYS_MOVE_MOUNT, layers, b"", AT_FDCWD, job["fs"]["tmpfs"].encode(), MOVE_MOUNT_F_EMPTY_PATH)
            if moved < 0:
                raise Failure("move_mount " + job["fs"]["tmpfs"], os.strerror(ctypes.get_errno()))
        for fd, path in ((own_mnt, job["mnt"]), (own_uts, job["uts"])):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            mount("/proc/self/fd/%d" % fd, path, None, MS_BIND, None, "keep namespace at " + path)
    finally:
        os.close(own_mnt)
        os.close(own_uts)
        if layers is not None:
            os.close(layers)


def main():
    libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if len(sys.argv) > 1 and os.getppid() != int(sys.argv[1]):
        sys.exit(1)  # the parent died before prctl took effect
    request = json.load(sys.stdin)
    jobs = request["nodes"]
    if any(job["fs"] for job in jobs) and libc.syscall(SYS_OPEN_TREE, -1, b"", 0) < 0 and ctypes.get_errno() == 38:
        emit({"unavailable": "this kernel has no open_tree (Linux 5.2)"})
        sys.exit(3)
    home_mnt = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    home_uts = os.open("/proc/self/ns/uts", os.O_RDONLY)
    current = jobs[0]
    try:
        folder = request.get("folder")
        if folder:
            # Namespace files can be kept only on a mount that does not share its mounts.
            mount(folder, folder, None, MS_BIND, None, "bind " + folder + " onto itself")
            mount(None, folder, None, MS_PRIVATE, None, "make " + folder + " private")
        for job in jobs:
            if job["fs"]:
                os.makedirs(job["fs"]["tmpfs"], mode=0o700, exist_ok=True)
        template = make_template(request["roots"])
        setns(home_mnt, CLONE_NEWNS, "return to the host's mount namespace")
        for job in jobs:
            current = job
            begun = time.monotonic()
            make_env(job, home_mnt, home_uts, template)
            emit({"done": job["node"], "ms": round((time.monotonic() - begun) * 1000, 2)})
    except Failure as failure:
        emit({"failed": current["node"], "step": failure.step, "error": failure.error})
        sys.exit(1)
    except Exception as error:  # noqa: BLE001 — whatever it is, the node and the words reach the user
        emit({"failed": current["node"], "step": "setup", "error": "%s: %s" % (type(error).__name__, error)})
        sys.exit(1)

main()
