// STUN over TCP (RFC 5389 section 7.2.2: messages back to back on the stream, each framed by its own
// length field), and testbed's filtering test for TCP. RFC 5780 has no filtering test over TCP (a
// response cannot come "from another address" on a connection), so testbed's server, asked for a
// Binding with CHANGE-REQUEST over TCP, opens a new connection to the client's mapped endpoint from the
// changed address (any port: a listening port cannot also dial out) and sends the success response
// over it. The client listens on its port: an accepted connection from that address is "answered".
// Over the asking connection the server says how its connection ended when it did not: 403 (the NAT
// answered the SYN with a reset) or 408 (no answer in time, the SYN was dropped).
import { headerLength } from "./message.ts";

/** The largest STUN message either side reads from a stream; a longer one breaks the stream. */
export const maxStreamMessage = 2048;
/** How long the server tries to connect back before it answers 408. */
export const connectBackTimeoutMs = 1000;
export const connectBackRefused = 403;
export const connectBackTimedOut = 408;

/** Cuts a TCP stream into STUN messages by their length fields. */
export class StunStreamReader {
	private pending: Buffer = Buffer.alloc(0);
	broken = false;

	push(chunk: Buffer): Buffer[] {
		if (this.broken) return [];
		this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
		const messages: Buffer[] = [];
		while (this.pending.length >= headerLength) {
			// The two top bits of a STUN message are zero; the length counts the attributes (a multiple of 4).
			const length = this.pending.readUInt16BE(2);
			if ((this.pending[0] & 0xc0) !== 0 || length % 4 !== 0 || headerLength + length > maxStreamMessage) {
				this.broken = true;
				this.pending = Buffer.alloc(0);
				return messages;
			}
			if (this.pending.length < headerLength + length) break;
			messages.push(this.pending.subarray(0, headerLength + length));
			this.pending = this.pending.subarray(headerLength + length);
		}
		return messages;
	}
}
