// Which ports a process has bound, from the kernel's socket tables of its network namespace
// (/proc/PID/net): how `ready: { udp | tcp }` is seen.
import { readFileSync } from "node:fs";

/** Whether a port is bound inside the network namespace of `pid` (UDP: any socket; TCP: listening). */
export function portBound(pid: number, proto: "udp" | "tcp", port: number): boolean {
	const hex = port.toString(16).toUpperCase().padStart(4, "0");
	for (const file of proto === "udp" ? ["udp", "udp6"] : ["tcp", "tcp6"]) {
		let text: string;
		try {
			text = readFileSync(`/proc/${pid}/net/${file}`, "utf8");
		} catch {
			continue;
		}
		for (const line of text.split("\n").slice(1)) {
			const fields = line.trim().split(/\s+/);
			if (fields.length < 4) continue;
			if (fields[1].split(":")[1] === hex && (proto === "udp" || fields[3] === "0A")) return true;
		}
	}
	return false;
}
