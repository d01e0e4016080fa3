// The reach agent's datagrams: what decodes, and that anything else is refused (dropped and counted).
import test from "ava";
import { decodeReach, encodeReach } from "../../agents/reach/protocol.ts";
import { logSeed, seededRandom } from "../helpers/fuzz.ts";

test("ping and pong round-trip", (t) => {
	t.deepEqual(decodeReach(encodeReach({ type: "ping", nonce: "0123456789abcdef" })), { type: "ping", nonce: "0123456789abcdef" });
	t.deepEqual(decodeReach(encodeReach({ type: "pong", nonce: "0123456789abcdef", node: "alice" })), { type: "pong", nonce: "0123456789abcdef", node: "alice" });
	t.is(encodeReach({ type: "ping", nonce: "0123456789abcdef" }).toString(), "testbed-reach ping 0123456789abcdef");
});

for (const [name, bytes] of [
	["empty", Buffer.alloc(0)],
	["wrong magic", Buffer.from("testbed-rech ping 0123456789abcdef")],
	["short nonce", Buffer.from("testbed-reach ping 0123")],
	["uppercase nonce", Buffer.from("testbed-reach ping 0123456789ABCDEF")],
	["extra field", Buffer.from("testbed-reach ping 0123456789abcdef x")],
	["pong without node", Buffer.from("testbed-reach pong 0123456789abcdef")],
	["pong with a hostile node name", Buffer.from("testbed-reach pong 0123456789abcdef a;rm")],
	["oversized", Buffer.alloc(4096, 0x41)],
	["truncated", encodeReach({ type: "pong", nonce: "0123456789abcdef", node: "alice" }).subarray(0, 20)],
] as const) {
	test(`refused: ${name}`, (t) => {
		t.is(decodeReach(bytes), undefined);
	});
}

test("random bytes never decode and never throw", (t) => {
	logSeed(t);
	const random = seededRandom();
	const bytes = (length: number) => Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
	for (let i = 0; i < 5000; i++) t.is(decodeReach(bytes(Math.floor(random() * 80))), undefined);
});
