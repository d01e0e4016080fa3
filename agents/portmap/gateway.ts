// The node's IPv4 default gateway, the box a port-mapping request goes to: read from
// /proc/net/route of the network namespace the agent runs in.
import { readFileSync } from "node:fs";

const gatewayFlag = 0x2;
const upFlag = 0x1;

/**
 * /proc/net/route's text → the default route's gateway with the lowest metric ("a.b.c.d", and its
 * interface), or undefined. Columns: Iface Destination Gateway Flags RefCnt Use Metric Mask …;
 * addresses are 8 hex digits in the host's (little-endian) byte order.
 */
export function parseDefaultGateway(text: string): { address: string; iface: string } | undefined {
	let best: { address: string; iface: string; metric: number } | undefined;
	for (const line of text.split("\n").slice(1, 1025)) {
		const [iface, destination, gateway, flags, , , metric, mask] = line.trim().split(/\s+/);
		if (!iface || destination !== "00000000" || mask !== "00000000" || !/^[0-9A-Fa-f]{8}$/.test(gateway ?? "")) continue;
		const flagBits = Number.parseInt(flags ?? "", 16);
		if (!(flagBits & gatewayFlag) || !(flagBits & upFlag)) continue;
		const value = Number.parseInt(gateway, 16);
		const address = [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24].join(".");
		const rank = Number(metric);
		if (!best || rank < best.metric) best = { address, iface, metric: Number.isFinite(rank) ? rank : Infinity };
	}
	return best && { address: best.address, iface: best.iface };
}

/** This namespace's IPv4 default gateway, or undefined (no default route, or /proc unreadable). */
export function defaultGateway(): string | undefined {
	try {
		return parseDefaultGateway(readFileSync("/proc/net/route", "utf8"))?.address;
	} catch {
		return undefined;
	}
}
