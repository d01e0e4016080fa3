// Parsing conntrack's view of a NAT into mappings: inside → public ↔ remote.
import test from "ava";
import { parseConntrack, parseFirewallFlows, parseUnanswered } from "../../src/inspect/nat-table.ts";

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

test("any node's translations: a router's hand-made MASQUERADE (ICMP and UDP), untranslated routed flows left out", (t) => {
	const router = `icmp     1 28 src=10.1.1.2 dst=203.0.113.53 type=8 code=0 id=7 src=203.0.113.53 dst=198.51.100.2 type=0 code=0 id=7 mark=0 use=1
udp      17 25 src=10.1.1.2 dst=203.0.113.53 sport=4000 dport=53 src=203.0.113.53 dst=198.51.100.2 sport=53 dport=4000 mark=0 use=1
udp      17 25 src=10.1.1.3 dst=203.0.113.53 sport=5000 dport=53 src=203.0.113.53 dst=10.1.1.3 sport=53 dport=5000 mark=0 use=1
`;
	t.deepEqual(parseConntrack(router), [
		{ proto: "icmp", inside: "10.1.1.2", public: "198.51.100.2", remote: "203.0.113.53", direction: "outbound", state: "seen both ways", secondsLeft: 28 },
		{ proto: "udp", inside: "10.1.1.2:4000", public: "198.51.100.2:4000", remote: "203.0.113.53:53", direction: "outbound", state: "seen both ways", secondsLeft: 25 },
	]);
	const portOnly = "udp      17 25 src=10.1.1.2 dst=203.0.113.53 sport=4000 dport=53 src=203.0.113.53 dst=10.1.1.2 sport=53 dport=20000 mark=0 use=1\n";
	t.is(parseConntrack(portOnly)[0]?.public, "10.1.1.2:20000", "a port changed is a translation too");
	t.deepEqual(parseConntrack("udp      17 25 src=10.1.1.2 dst=203.0.113.53 sport=4000 dport=53 [UNREPLIED] src=203.0.113.53 dst=10.1.1.2 sport=53 dport=4000 mark=0 use=1\n"), []);
});

test("unanswered flows to the NAT's own public address: what a carrier NAT without hairpin keeps of its inside's packets", (t) => {
	const carrier = `udp      17 49 src=100.64.0.6 dst=198.51.100.2 sport=37710 dport=54095 [UNREPLIED] src=198.51.100.2 dst=100.64.0.6 sport=54095 dport=37710 mark=0 use=1
udp      17 49 src=100.64.0.6 dst=203.0.113.10 sport=37710 dport=7777 src=203.0.113.10 dst=198.51.100.2 sport=7777 dport=37710 [ASSURED] mark=0 use=1
udp      17 40 src=198.51.100.2 dst=203.0.113.10 sport=6000 dport=3001 [UNREPLIED] src=203.0.113.10 dst=198.51.100.2 sport=3001 dport=6000 mark=0 use=1
udp      17 40 src=100.64.0.2 dst=198.51.100.2 sport=3478 dport=3478 src=198.51.100.2 dst=100.64.0.2 sport=3478 dport=3478 mark=0 use=1
`;
	t.deepEqual(parseUnanswered(carrier, "198.51.100.2"), [{ proto: "udp", from: "100.64.0.6:37710", to: "198.51.100.2:54095", secondsLeft: 49 }]);
	t.deepEqual(parseConntrack(carrier, "198.51.100.2").map((flow) => flow.inside), ["100.64.0.6:37710"], "only the translated flow to the rendezvous");
});

test("an IPv6 firewall's flows from conntrack -f ipv6: nothing translated, who started each, the gateway's own traffic left out", (t) => {
	const sample = [
		"udp      17 118 src=2001:db8:1:1::2 dst=2001:db8:ff:3::10 sport=56318 dport=7777 src=2001:db8:ff:3::10 dst=2001:db8:1:1::2 sport=7777 dport=56318 [ASSURED] mark=0 use=1",
		"tcp      6 7438 ESTABLISHED src=2001:db8:2:1::2 dst=2001:db8:1:1::2 sport=40001 dport=8080 src=2001:db8:1:1::2 dst=2001:db8:2:1::2 sport=8080 dport=40001 [ASSURED] mark=0 use=1",
		"icmpv6   58 29 src=2001:db8:ff:1::1 dst=2001:db8:ff:1::2 type=128 code=0 id=7 src=2001:db8:ff:1::2 dst=2001:db8:ff:1::1 type=129 code=0 id=7 mark=0 use=1",
		"conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.",
	].join("\n");
	t.deepEqual(parseFirewallFlows(sample, (ip) => ip.startsWith("2001:db8:1:1:")), [
		{ proto: "udp", inside: "[2001:db8:1:1::2]:56318", public: "[2001:db8:1:1::2]:56318", remote: "[2001:db8:ff:3::10]:7777", direction: "outbound", state: "ASSURED", secondsLeft: 118 },
		{ proto: "tcp", inside: "[2001:db8:1:1::2]:8080", public: "[2001:db8:1:1::2]:8080", remote: "[2001:db8:2:1::2]:40001", direction: "inbound", state: "ASSURED", secondsLeft: 7438 },
	]);
});

test("a translating IPv6 gateway (NAT66 masquerade): each flow's public endpoint from the reply tuple, and nat-table says what it translates and shows it", async (t) => {
	const { renderNatTable } = await import("../../src/cli/commands/nat-table.ts");
	const sample = "udp      17 119 src=2001:db8:1:1::2 dst=2001:db8:ff:3::10 sport=55543 dport=7777 src=2001:db8:ff:3::10 dst=2001:db8:ff:1::2 sport=7777 dport=1024 [ASSURED] mark=0 use=1";
	const flows = parseFirewallFlows(sample, (ip) => ip.startsWith("2001:db8:1:1:"));
	t.deepEqual(flows, [{ proto: "udp", inside: "[2001:db8:1:1::2]:55543", public: "[2001:db8:ff:1::2]:1024", remote: "[2001:db8:ff:3::10]:7777", direction: "outbound", state: "ASSURED", secondsLeft: 119 }]);
	const base = { lab: "n66", nat: "home1", publicAddress: "198.51.100.2", behaviour: "port-restricted", flows: [], mappings: [], at: "", declared: true };
	const translated = renderNatTable({ ...base, firewall6: { filtering: "address-and-port-dependent", translation: "NAT66 masquerade to 2001:db8:ff:1::2", flows } });
	t.regex(translated, /IPv6 firewall \(address-and-port-dependent filtering; NAT66 masquerade to 2001:db8:ff:1::2\):\nproto +inside +public +↔ +remote/);
	t.regex(translated, /\[2001:db8:1:1::2\]:55543 +→ +\[2001:db8:ff:1::2\]:1024 +↔ +\[2001:db8:ff:3::10\]:7777/);
	const routed = renderNatTable({ ...base, firewall6: { filtering: "address-and-port-dependent", flows } });
	t.regex(routed, /routed, nothing translated\):\nproto +inside +↔ +remote/, "a routed gateway has no public column");
});
