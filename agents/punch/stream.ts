// The punch protocol over TCP: each message is one frame, a 2-byte big-endian length and then the
// datagram's bytes (the same JSON as over UDP, the same cap). A reader that is given more than a frame
// may hold, or a length of 0, is broken: the connection is closed and the reason counted.
import { maxDatagram } from "./protocol.ts";

/** The frame of a datagram. */
export function frame(datagram: Uint8Array): Buffer {
	const header = Buffer.alloc(2);
	header.writeUInt16BE(datagram.length);
	return Buffer.concat([header, datagram]);
}

/** Cuts a TCP byte stream into datagrams. */
export class FrameReader {
	private pending: Buffer = Buffer.alloc(0);
	/** Why the stream cannot be read on (the connection should be closed), once it is broken. */
	broken?: "oversized" | "empty";

	constructor(private readonly maxFrame = maxDatagram) {}

	/** The whole frames the stream holds after `chunk`; none once broken. */
	push(chunk: Buffer): Buffer[] {
		if (this.broken) return [];
		this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
		const frames: Buffer[] = [];
		while (this.pending.length >= 2) {
			const length = this.pending.readUInt16BE(0);
			if (length === 0 || length > this.maxFrame) {
				this.broken = length === 0 ? "empty" : "oversized";
				this.pending = Buffer.alloc(0);
				return frames;
			}
			if (this.pending.length < 2 + length) break;
			frames.push(this.pending.subarray(2, 2 + length));
			this.pending = this.pending.subarray(2 + length);
		}
		return frames;
	}
}
