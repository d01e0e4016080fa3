// Parsing conntrack's view of a NAT into mappings: inside → public ↔ remote.
import test from "ava";
import { parseConntrack } from "../../src/inspect/nat-table.ts";

const sample = `udp      17 118 src=192.168.1.2 dst=198.51.100.6 sport=53250 dport=41795 src=198.51.100.6 dst=198.51.100.2 sport=41795 dport=53250 mark=0 use=1
udp      17 29 src=203.0.113.11 dst=198.51.100.2 sport=3000 dport=5000 [UNREPLIED] src=192.168.1.2 dst=203.0.113.11 sport=5000 dport=3000 mark=0 use=1
udp      17 100 src=198.51.100.2 dst=203.0.113.10 sport=6000 dport=3001 src=203.0.113.10 dst=198.51.100.2 sport=3001 dport=6000 [ASSURED] mark=0 use=1
tcp      6 431999 ESTABLISHED src=192.168.1.2 dst=203.0.113.10 sport=40000 dport=7357 src=203.0.113.10 dst=198.51.100.2 sport=7357 dport=40000 [ASSURED] mark=0 use=1
`;

test("outbound and inbound flows, the NAT box's own flows left out", (t) => {
	t.deepEqual(parseConntrack(sample, "198.51.100.2"), [
		{ proto: "tcp", inside: "192.168.1.2:40000", public: "198.51.100.2:40000", remote: "203.0.113.10:7357", direction: "outbound", state: "ASSURED", secondsLeft: 431999 },
		{ proto: "udp", inside: "192.168.1.2:5000", public: "198.51.100.2:5000", remote: "203.0.113.11:3000", direction: "inbound", state: "UNREPLIED", secondsLeft: 29 },
		{ proto: "udp", inside: "192.168.1.2:53250", public: "198.51.100.2:53250", remote: "198.51.100.6:41795", direction: "outbound", state: "seen both ways", secondsLeft: 118 },
	]);
});

test("garbage lines are ignored", (t) => {
	t.deepEqual(parseConntrack("conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n\nnonsense\n", "1.2.3.4"), []);
});
