// The punch protocol over TCP (agents/punch/stream.ts): frames cut from a byte stream however it is
// split, and a hostile stream (a huge or empty length, random bytes) breaks the reader instead of
// growing it or throwing.
import test from "ava";
import fc from "fast-check";
import { fcOptions, logSeed } from "../helpers/fuzz.ts";
import { FrameReader, frame } from "../../agents/punch/stream.ts";
import { decode, encode, maxDatagram } from "../../agents/punch/protocol.ts";

test.beforeEach((t) => logSeed(t));

const register = encode({ t: "register", tx: "0123456789abcdef", id: "alice.1", host: ["192.168.1.2:40000"] })!;

test("frames come out whole however the stream is cut", (t) => {
	fc.assert(
		fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: maxDatagram }), { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 40 }), (datagrams, cuts) => {
			const stream = Buffer.concat(datagrams.map((datagram) => frame(datagram)));
			const reader = new FrameReader();
			const out: Buffer[] = [];
			let at = 0;
			for (let i = 0; at < stream.length; i++) {
				const size = cuts[i % cuts.length];
				out.push(...reader.push(stream.subarray(at, at + size)));
				at += size;
			}
			return reader.broken === undefined && out.length === datagrams.length && out.every((bytes, k) => Buffer.compare(bytes, Buffer.from(datagrams[k])) === 0);
		}),
		fcOptions(300),
	);
	t.pass();
});

test("a real message survives framing; several frames in one chunk; a frame split in its length", (t) => {
	const reader = new FrameReader();
	const twice = Buffer.concat([frame(register), frame(register)]);
	const frames = reader.push(twice.subarray(0, 1)).concat(reader.push(twice.subarray(1)));
	t.is(frames.length, 2);
	t.deepEqual(decode(frames[1]), decode(register));
	t.true(decode(frames[0]).ok);
});

test("a length over the datagram cap or of zero breaks the reader: nothing more is read or kept", (t) => {
	const oversized = new FrameReader();
	t.deepEqual(oversized.push(Buffer.from([0xff, 0xff, 1, 2, 3])), []);
	t.is(oversized.broken, "oversized");
	t.deepEqual(oversized.push(frame(register)), [], "a broken stream stays broken");
	const empty = new FrameReader();
	t.deepEqual(empty.push(Buffer.concat([frame(register), Buffer.from([0, 0])])).length, 1, "the frame before the bad one is read");
	t.is(empty.broken, "empty");
});

test("random bytes never throw; the reader either breaks or holds less than one frame", (t) => {
	fc.assert(
		fc.property(fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 10 }), (chunks) => {
			const reader = new FrameReader();
			for (const chunk of chunks) for (const datagram of reader.push(Buffer.from(chunk))) if (datagram.length === 0 || datagram.length > maxDatagram) return false;
			return true;
		}),
		fcOptions(300),
	);
	t.pass();
});
