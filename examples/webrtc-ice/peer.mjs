// A WebRTC data channel between two peers with werift (an independent, pure TypeScript WebRTC stack
// from npm): ICE with a STUN server (coturn), DTLS, SCTP. testbed runs it as a listen/dial pair:
//   TESTBED_ROLE=listen: register with the signaling server, answer an offer, echo "ping" as "pong";
//   TESTBED_ROLE=dial: offer to TESTBED_PEER, open a data channel, send "ping", wait for "pong", print
//   one JSON line ({"rtt_ms", "path", "local", "remote"}) and exit 0; exit 1 when ICE fails or
//   ICE_TIMEOUT (seconds, default 10) passes.
// SIGNAL (host:port) and STUN (host:port) come from the topology (placeholders for the stun node).
import { connect } from "node:net";
import { RTCPeerConnection } from "werift";

const { TESTBED_ROLE: role, TESTBED_NODE: me, TESTBED_PEER: peer, SIGNAL: signal, STUN: stun } = process.env;
const timeoutS = Number(process.env.ICE_TIMEOUT ?? 10);
const [signalHost, signalPort] = signal.split(":");

const pc = new RTCPeerConnection({ iceServers: [{ urls: `stun:${stun}` }] });
const gathered = () => new Promise((resolve) => (pc.iceGatheringState === "complete" ? resolve() : pc.iceGatheringStateChange.subscribe((state) => state === "complete" && resolve())));

function send(socket, message) {
	socket.write(`${JSON.stringify(message)}\n`);
}
function onLine(socket, handle) {
	let buffered = "";
	socket.setEncoding("utf8");
	socket.on("data", (chunk) => {
		buffered += chunk;
		let newline;
		while ((newline = buffered.indexOf("\n")) >= 0) {
			handle(JSON.parse(buffered.slice(0, newline)));
			buffered = buffered.slice(newline + 1);
		}
	});
}

/** Where the nominated pair goes: "lan" (host candidates), "direct" (through the NATs). */
function path() {
	const pair = pc.iceTransports[0]?.connection?.nominated;
	if (!pair) return {};
	const show = (candidate) => `${candidate.type} ${candidate.host}:${candidate.port}`;
	return { path: pair.localCandidate.type === "host" && pair.remoteCandidate.type === "host" ? "lan" : "direct", local: show(pair.localCandidate), remote: show(pair.remoteCandidate) };
}

if (role === "listen") {
	const socket = connect(Number(signalPort), signalHost, () => send(socket, { listen: me }));
	pc.onDataChannel.subscribe((channel) => channel.onMessage.subscribe((message) => String(message).startsWith("ping") && channel.send(String(message).replace("ping", "pong"))));
	onLine(socket, async (message) => {
		if (!message.offer) return;
		await pc.setRemoteDescription({ type: "offer", sdp: message.offer });
		await pc.setLocalDescription(await pc.createAnswer());
		await gathered();
		send(socket, { answer: pc.localDescription.sdp, from: me });
	});
} else {
	const timer = setTimeout(() => {
		console.error(`no data channel to ${peer} within ${timeoutS} s (ICE ${pc.iceConnectionState})`);
		process.exit(1);
	}, timeoutS * 1000);
	pc.iceConnectionStateChange.subscribe((state) => {
		if (state === "failed") {
			console.error(`ICE failed between ${me} and ${peer}`);
			process.exit(1);
		}
	});
	const channel = pc.createDataChannel("testbed");
	await pc.setLocalDescription(await pc.createOffer());
	await gathered();
	const socket = connect(Number(signalPort), signalHost, () => send(socket, { dial: peer, offer: pc.localDescription.sdp }));
	onLine(socket, async (message) => {
		if (message.error) {
			console.error(message.error);
			process.exit(1);
		}
		if (message.answer) await pc.setRemoteDescription({ type: "answer", sdp: message.answer });
	});
	let sentAt;
	channel.onopen = () => {
		sentAt = performance.now();
		channel.send("ping");
	};
	channel.onMessage.subscribe((message) => {
		if (!String(message).startsWith("pong")) return;
		clearTimeout(timer);
		console.log(JSON.stringify({ peer, rtt_ms: Math.round((performance.now() - sentAt) * 100) / 100, ...path() }));
		process.exit(0);
	});
}
