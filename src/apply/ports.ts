// A process's sockets as the kernel lists them (/proc/PID/net/{udp,tcp}{,6} of its network namespace,
// /proc/PID/fd for the ones it holds): how `ready: { udp | tcp }` is seen, and whether a check's
// listener is on the network yet.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export interface SocketEntry {
	proto: "udp" | "tcp";
	localPort: number;
	/** The kernel's state in hex: "0A" LISTEN, "01" ESTABLISHED (TCP); UDP sockets have no meaningful state. */
	state: string;
	inode: string;
}

/** Every UDP or TCP socket (IPv4 and IPv6) in the network namespace of `pid`. */
export function sockets(pid: number, proto: "udp" | "tcp"): SocketEntry[] {
	const entries: SocketEntry[] = [];
	for (const file of [proto, `${proto}6`]) {
		let text: string;
		try {
			text = readFileSync(`/proc/${pid}/net/${file}`, "utf8");
		} catch {
			continue;
		}
		for (const line of text.split("\n").slice(1)) {
			const fields = line.trim().split(/\s+/);
			if (fields.length < 10) continue;
			entries.push({ proto, localPort: Number.parseInt(fields[1].split(":")[1], 16), state: fields[3], inode: fields[9] });
		}
	}
	return entries;
}

/** Whether a port is bound inside the network namespace of `pid` (UDP: any socket; TCP: listening). */
export function portBound(pid: number, proto: "udp" | "tcp", port: number): boolean {
	return sockets(pid, proto).some((entry) => entry.localPort === port && (proto === "udp" || entry.state === "0A"));
}

/** The inodes of the sockets these processes hold open. */
export function socketInodes(pids: number[]): Set<string> {
	const inodes = new Set<string>();
	for (const pid of pids) {
		try {
			for (const fd of readdirSync(`/proc/${pid}/fd`)) {
				const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
				if (match) inodes.add(match[1]);
			}
		} catch {}
	}
	return inodes;
}
