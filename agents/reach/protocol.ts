// The reach agent's wire format: small text datagrams a person can read in a capture.
//   "testbed-reach ping <nonce>"            prober → listener
//   "testbed-reach pong <nonce> <node>"     listener → prober (the node name proves who answered)

export const reachPort = 7357;
const magic = "testbed-reach";

export type ReachMessage = { type: "ping"; nonce: string } | { type: "pong"; nonce: string; node: string };

export function encodeReach(message: ReachMessage): Buffer {
	return Buffer.from(message.type === "ping" ? `${magic} ping ${message.nonce}` : `${magic} pong ${message.nonce} ${message.node}`);
}

/** Anything that is not exactly a reach message is undefined (and gets dropped and counted). */
export function decodeReach(data: Buffer): ReachMessage | undefined {
	if (data.length > 200) return undefined;
	const parts = data.toString("latin1").split(" ");
	if (parts[0] !== magic || !/^[0-9a-f]{16}$/.test(parts[2] ?? "")) return undefined;
	if (parts[1] === "ping" && parts.length === 3) return { type: "ping", nonce: parts[2] };
	if (parts[1] === "pong" && parts.length === 4 && /^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(parts[3])) return { type: "pong", nonce: parts[2], node: parts[3] };
	return undefined;
}
