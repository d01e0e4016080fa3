// A minimal signaling server for peer.mjs (WebRTC needs one; peers behind NATs cannot reach each
// other to swap offers): TCP, one JSON object per line. A listener says { "listen": NAME } and waits;
// a dialer sends { "dial": NAME, "offer": SDP } and gets { "answer": SDP } once that listener answers.
import { createServer } from "node:net";

const port = Number(process.env.SIGNAL_PORT ?? 8080);
const listeners = new Map(); // name → socket
const waiting = new Map(); // name → dialer socket

function lines(socket, onMessage) {
	let buffered = "";
	socket.setEncoding("utf8");
	socket.on("data", (chunk) => {
		buffered += chunk;
		if (buffered.length > 1 << 20) return socket.destroy();
		let newline;
		while ((newline = buffered.indexOf("\n")) >= 0) {
			const line = buffered.slice(0, newline);
			buffered = buffered.slice(newline + 1);
			try {
				onMessage(JSON.parse(line));
			} catch {
				socket.destroy();
			}
		}
	});
	socket.on("error", () => socket.destroy());
}

createServer((socket) => {
	lines(socket, (message) => {
		if (typeof message.listen === "string") {
			listeners.set(message.listen, socket);
			socket.on("close", () => listeners.get(message.listen) === socket && listeners.delete(message.listen));
			console.log(`${message.listen} listens`);
		} else if (typeof message.dial === "string" && typeof message.offer === "string") {
			const listener = listeners.get(message.dial);
			if (!listener) return socket.end(`${JSON.stringify({ error: `${message.dial} does not listen` })}\n`);
			waiting.set(message.dial, socket);
			listener.write(`${JSON.stringify({ offer: message.offer })}\n`);
			console.log(`offer for ${message.dial}`);
		} else if (typeof message.answer === "string" && typeof message.from === "string") {
			waiting.get(message.from)?.end(`${JSON.stringify({ answer: message.answer })}\n`);
			waiting.delete(message.from);
			console.log(`answer from ${message.from}`);
		}
	});
}).listen(port, () => console.log(`signaling on port ${port}`));
