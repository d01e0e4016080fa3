// Hole punching peer agent: many independent endpoints in one process, each a fresh UDP socket
// registered with the rendezvous under its own id. On "connect" (or when the rendezvous says a
// peer wants it) both sides punch: probes to all of the other's candidates every intervalMs, a
// nonce handshake to confirm a path, RTT pings, then keepalives; the rendezvous relay when direct
// fails by the deadline and relay is allowed. The session logic is agents/punch/session.ts; the
// wire format agents/punch/protocol.ts.
//
// Sessions are held: keepalives (pings) every keepaliveMs; silence for lossAfterMs → "lost", then
// re-registration and re-punch rounds through the rendezvous until connected again ("reconnected");
// keepalives from a new source of the peer → "migrated". Every endpoint re-registers every two
// keepalives, so the rendezvous always has its current reflexive endpoint ("rebound" when it
// changed). An endpoint opened with a `claim` can be opened again by a new process (a restart) with
// the same claim: it takes the id over at the rendezvous.
//
// Port mapping: an endpoint opened with `portMapping` (PCP, NAT-PMP, UPnP-IGD, in the order given)
// first asks the node's IPv4 default gateway to forward a public port to its own (agents/portmap/),
// then registers the granted endpoint as `mapped`: the peer punches it as a candidate ("mapped").
// The mapping is renewed at half its lifetime and deleted when the endpoint closes (best effort).
//
//   node --import tsx agents/peer/main.ts --node NAME --rendezvous IP:PORT|[IPV6]:PORT [--proto udp|tcp] [--family 4|6]
//
// With --family 6 every socket is IPv6 only, host candidates are the node's global IPv6 addresses,
// and the rendezvous is reached at its IPv6 address: a punch through stateful IPv6 firewalls.
//
// With --proto tcp every endpoint is a TCP port: a connection to the rendezvous (the same port on
// the rendezvous host, over TCP) from it, a listener on it, and simultaneous-open dials from it to the
// peer's candidates (agents/peer/transport.ts); the messages are the same, framed (punch/stream.ts).
//
// stdin (JSON lines):
//   {"id":1,"cmd":"open","endpoint":"alice.3","claim":"<32 hex>"?,"keepaliveMs":1000?,"portMapping":["pcp","nat-pmp","upnp"]?}
//   {"id":2,"cmd":"connect","endpoint":"alice.3","target":"bob.3","intervalMs":20,"deadlineMs":5000,"relay":true,"keepaliveMs":1000?,"lossAfterMs":3000?}
//   {"id":3,"cmd":"close","endpoint":"alice.3"}
//   {"id":4,"cmd":"stats"}
//   {"id":5,"cmd":"status","endpoint":"alice.3","since":WALL_MS?}
// stdout (JSON lines; events carry wallMs, the agent's clock as ms since the epoch, to sub-ms):
//   {"event":"ready",node,rendezvous}
//   {id,"event":"registered",endpoint,local:"ip:port",reflexive:"ip:port",host:["ip:port",…],portMapping?:{granted:{method,external,internal,lifetimeS}|null,failures:[{method,reason}]}}
//   {id,"event":"started",endpoint,peer,role,round}                (the rendezvous answered a connect)
//   {"event":"started",endpoint,peer,role,round}                    (a peer connects to this endpoint, or a re-punch round)
//   {"event":"connected",endpoint,peer,path:"lan"|"hairpin"|"direct"|"relayed",local,remote,candidate:"host"|"mapped"|"srflx"|"prflx"|"relay",seenAs?,timeToConnectMs,packetsSent,rttMs}
//   {"event":"failed",endpoint,peer,reason,packetsSent}
//   {"event":"lost",endpoint,peer,remote,silentMs} · {"event":"rebound",endpoint,old,new}
//   {"event":"migrated",endpoint,peer,old,new,path}
//   {"event":"reconnected",endpoint,peer,path,local,remote,candidate,seenAs?,downMs,attempts,timeToConnectMs,packetsSent,rttMs}
//   {"event":"remapped",endpoint,method,old,new,lifetimeS} · {"event":"mapping-failed",endpoint,method,external,reason}   (renewing the port mapping)
//   {id,"event":"status",endpoint,peer,phase,path,remote,reflexive,mapped,keepaliveMs,lossAfterMs,connectedAt,heardAt,ackedAt,heardSince}  (times: wall ms or null)
//   {id,"event":"closed",endpoint} · {id,"event":"stats",received,sent,sendFailures,endpoints,sessions,connected,dropped:{reason:count},droppedTotal}
//   {id,"event":"error",error}                                       (bad command, unknown peer, rendezvous silent)
// Exits when stdin closes.
import { endpointOf, splitEndpoint } from "../punch/protocol.ts";
import { argument, commands, emit } from "../agent-io.ts";
import { PeerDriver } from "./peer.ts";

const node = argument("--node") ?? "unknown";

async function main(): Promise<void> {
	const target = splitEndpoint(argument("--rendezvous") ?? "");
	if (!target) {
		emit({ event: "fatal", error: "usage: peer --node NAME --rendezvous IP:PORT" });
		process.exit(2);
	}
	const proto = argument("--proto") ?? "udp";
	if (proto !== "udp" && proto !== "tcp") {
		emit({ event: "fatal", error: "--proto must be udp or tcp" });
		process.exit(2);
	}
	const family = Number(argument("--family") ?? (target.address.includes(":") ? 6 : 4));
	if (family !== 4 && family !== 6) {
		emit({ event: "fatal", error: "--family must be 4 or 6" });
		process.exit(2);
	}
	const peer = new PeerDriver(node, { ...target, endpoint: endpointOf(target.address, target.port) }, undefined, proto, family);
	emit({ event: "ready", node, rendezvous: endpointOf(target.address, target.port), proto, family });
	for await (const command of commands()) {
		try {
			peer.handle(command as Record<string, unknown>);
		} catch (error) {
			emit({ id: (command as { id?: unknown }).id, event: "error", error: String((error as Error)?.message ?? error) });
		}
	}
	await peer.releaseAll();
	process.exit(0);
}

main().catch((error) => {
	emit({ event: "fatal", error: String(error?.message ?? error) });
	process.exit(1);
});
