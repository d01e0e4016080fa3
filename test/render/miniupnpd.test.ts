// The port-mapping daemon's side, pure: its lease file read back (hostile lines skipped), the sync of
// leases into testbed's maps, a NAT reboot's flush, and the device's stable UUID.
import test from "ava";
import { deviceUuid, parseLeases, renderForgetGrants, renderGrantSync } from "../../src/render/miniupnpd.ts";

const file = [
	"UDP:5000:192.168.1.2:5000:1796069060:libminiupnpc",
	"TCP:7001:192.168.1.2:6001:0:my:game:server",
	"UDP:5002:192.168.1.3:5002:1796069100:NAT-PMP 5002 udp",
	"UDP:5004:192.168.1.2:5004:1796069200:PCP MAP 0123456789abcdef01234567",
	"UDP:70000:192.168.1.2:5000:1796069060:port out of range",
	"SCTP:5000:192.168.1.2:5000:1796069060:unknown protocol",
	"UDP:5005:192.168.1.2:0:1796069060:inside port 0",
	"garbage",
	"",
].join("\n");

test("the lease file: protocol, ports, inside endpoint, expiry and who asked; anything else is skipped", (t) => {
	const leases = parseLeases(file);
	t.deepEqual(
		leases.map((lease) => `${lease.protocol} ${lease.proto} ${lease.publicPort} → ${lease.insideAddress}:${lease.insidePort} until ${lease.expires} (${lease.description})`),
		[
			"upnp udp 5000 → 192.168.1.2:5000 until 1796069060 (libminiupnpc)",
			"upnp tcp 7001 → 192.168.1.2:6001 until 0 (my:game:server)",
			"nat-pmp udp 5002 → 192.168.1.3:5002 until 1796069100 (NAT-PMP 5002 udp)",
			"pcp udp 5004 → 192.168.1.2:5004 until 1796069200 (PCP MAP 0123456789abcdef01234567)",
		],
	);
	t.is(parseLeases("UDP:1:10.0.0.1:1:1:x\n".repeat(10_000)).length, 4096, "a huge file is capped");
	t.is(parseLeases(`UDP:5000:192.168.1.2:5000:1796069060:${"d".repeat(5000)}`)[0].description.length, 120, "descriptions are capped");
});

test("the sync makes the granted maps hold exactly the live leases, each ending with its lease", (t) => {
	t.is(
		renderGrantSync(parseLeases(file), 1796069080),
		[
			"flush map ip testbed granted",
			"flush map ip testbed granted-public",
			"add element ip testbed granted { 192.168.1.2 . tcp . 6001 : 7001 }",
			"add element ip testbed granted-public { tcp . 7001 : 192.168.1.2 . 6001 }",
			"add element ip testbed granted { 192.168.1.3 . udp . 5002 timeout 20s : 5002 }",
			"add element ip testbed granted-public { udp . 5002 timeout 20s : 192.168.1.3 . 5002 }",
			"add element ip testbed granted { 192.168.1.2 . udp . 5004 timeout 120s : 5004 }",
			"add element ip testbed granted-public { udp . 5004 timeout 120s : 192.168.1.2 . 5004 }",
			"",
		].join("\n"),
		"the expired lease (5000) is left out; a lease without end has no timeout",
	);
	const twice = parseLeases("UDP:5000:192.168.1.2:5000:0:a\nUDP:5001:192.168.1.2:5000:0:b\n");
	t.is(renderGrantSync(twice, 0).split("\n").filter((line) => line.includes("granted {")).length, 1, "an endpoint with two mappings leaves from the first");
	t.is(renderGrantSync([], 0), "flush map ip testbed granted\nflush map ip testbed granted-public\n");
});

test("a NAT reboot flushes the daemon's chains and testbed's mirror of its grants", (t) => {
	t.deepEqual(renderForgetGrants().trimEnd().split("\n"), [
		"flush chain inet miniupnpd forward_miniupnpd",
		"flush chain inet miniupnpd prerouting_miniupnpd",
		"flush chain inet miniupnpd postrouting_miniupnpd",
		"flush map ip testbed granted",
		"flush map ip testbed granted-public",
	]);
});

test("each NAT's UPnP device has its own UUID, the same at every up", (t) => {
	t.is(deviceUuid("lab", "home"), deviceUuid("lab", "home"));
	t.not(deviceUuid("lab", "home"), deviceUuid("lab", "office"));
	t.not(deviceUuid("lab", "home"), deviceUuid("lab2", "home"));
	t.regex(deviceUuid("lab", "home"), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
});
