// The port-mapping codecs: PCP (RFC 6887) and NAT-PMP (RFC 6886) byte layouts as the RFCs draw
// them, UPnP-IGD's SSDP, description and SOAP text as miniupnpd sends it, the default gateway from
// /proc/net/route — and hostile or truncated input, which is a reason and never a throw.
import { randomBytes } from "node:crypto";
import test from "ava";
import * as pcp from "../../agents/portmap/pcp.ts";
import * as pmp from "../../agents/portmap/nat-pmp.ts";
import * as upnp from "../../agents/portmap/upnp.ts";
import { parseDefaultGateway } from "../../agents/portmap/gateway.ts";

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ""), "hex");
const nonce = hex("0102030405060708090a0b0c");
const mapped = (address: string) => `00000000000000000000ffff${Buffer.from(address.split(".").map(Number)).toString("hex")}`;

// ── PCP ─────────────────────────────────────────────────────────────────────

test("PCP MAP request: the 24-byte header and the 36-byte MAP data of RFC 6887 §7.1 and §11.1", (t) => {
	const bytes = pcp.encodeMap({ client: "192.168.1.2", nonce, protocol: "udp", internalPort: 5004, suggestedPort: 5004, lifetimeS: 3600 });
	t.is(bytes.length, 60);
	t.deepEqual(
		bytes,
		hex(`
			02 01 0000 00000e10 ${mapped("192.168.1.2")}
			0102030405060708090a0b0c 11 000000 138c 138c ${mapped("0.0.0.0")}`),
	);
	const tcp = pcp.encodeMap({ client: "10.0.0.7", nonce, protocol: "tcp", internalPort: 40000, suggestedPort: 0, suggestedAddress: "11.0.0.2", lifetimeS: 0 });
	t.is(tcp[24 + 12], 6, "TCP is IP protocol 6");
	t.is(tcp.readUInt16BE(24 + 18), 0, "suggested port 0: any");
	t.deepEqual(tcp.subarray(24 + 20), hex(mapped("11.0.0.2")));
	t.is(tcp.readUInt32BE(4), 0, "lifetime 0 deletes");
});

test("PCP ANNOUNCE request: the header alone, lifetime 0", (t) => {
	t.deepEqual(pcp.encodeAnnounce("192.168.1.2"), hex(`02 00 0000 00000000 ${mapped("192.168.1.2")}`));
});

test("PCP: our own bad values are a RangeError (never sent)", (t) => {
	t.throws(() => pcp.encodeMap({ client: "192.168.1.2", nonce: nonce.subarray(0, 11), protocol: "udp", internalPort: 1, suggestedPort: 0, lifetimeS: 1 }), { instanceOf: RangeError });
	t.throws(() => pcp.encodeMap({ client: "192.168.1.2", nonce, protocol: "udp", internalPort: 0, suggestedPort: 0, lifetimeS: 1 }), { instanceOf: RangeError });
	t.throws(() => pcp.encodeMap({ client: "192.168.1.256", nonce, protocol: "udp", internalPort: 1, suggestedPort: 0, lifetimeS: 1 }), { instanceOf: RangeError });
	t.throws(() => pcp.encodeMap({ client: "192.168.1.2", nonce, protocol: "udp", internalPort: 1, suggestedPort: 0, lifetimeS: 2 ** 32 }), { instanceOf: RangeError });
});

const mapExpect = { opcode: "map" as const, nonce, protocol: "udp" as const, internalPort: 5004 };
const mapResponse = (fields: { result?: number; lifetime?: number; port?: number; address?: string; opcode?: string; nonce?: string; protocol?: string; internal?: string; tail?: string } = {}) =>
	hex(`02 ${fields.opcode ?? "81"} 00 ${(fields.result ?? 0).toString(16).padStart(2, "0")} ${(fields.lifetime ?? 120).toString(16).padStart(8, "0")} 00000005 000000000000000000000000
		${fields.nonce ?? "0102030405060708090a0b0c"} ${fields.protocol ?? "11"} 000000 ${fields.internal ?? "138c"} ${(fields.port ?? 40001).toString(16).padStart(4, "0")} ${mapped(fields.address ?? "11.0.0.2")} ${fields.tail ?? ""}`);

test("PCP MAP response: result, lifetime, epoch and the assigned external endpoint", (t) => {
	t.deepEqual(pcp.decodeResponse(mapResponse(), mapExpect), {
		ok: true,
		response: { opcode: "map", result: 0, resultName: "SUCCESS", lifetimeS: 120, epoch: 5, nonce, protocol: 17, internalPort: 5004, externalPort: 40001, externalAddress: "11.0.0.2" },
	});
	// Options after the MAP data are skipped when well-formed (code, reserved, length 4, 4 bytes).
	t.true(pcp.decodeResponse(mapResponse({ tail: "01 00 0004 0a000001" }), mapExpect).ok);
	t.like(pcp.decodeResponse(mapResponse({ result: 8, port: 0, address: "0.0.0.0", lifetime: 30 }), mapExpect), { ok: true, response: { result: 8, resultName: "NO_RESOURCES" } });
	// An error answer of the header alone still tells the result.
	t.like(pcp.decodeResponse(hex(`02 81 00 0c 00000000 00000005 000000000000000000000000`), mapExpect), { ok: true, response: { result: 12, resultName: "ADDRESS_MISMATCH" } });
	// A delete's answer (lifetime 0) need not name an endpoint.
	t.true(pcp.decodeResponse(mapResponse({ lifetime: 0, port: 0, address: "0.0.0.0" }), mapExpect).ok);
	t.like(pcp.decodeResponse(hex(`02 80 00 00 00000000 00000002 000000000000000000000000`), { opcode: "announce" }), { ok: true, response: { opcode: "announce", result: 0, epoch: 2 } });
});

const pcpRefused: [string, Buffer, RegExp][] = [
	["empty", Buffer.alloc(0), /^empty$/],
	["one byte", hex("02"), /truncated/],
	["23 bytes", mapResponse().subarray(0, 23), /truncated/],
	["a MAP answer cut inside its data", mapResponse().subarray(0, 40), /truncated MAP response/],
	["a length that is no multiple of 4", Buffer.concat([mapResponse(), hex("00")]), /multiple of 4/],
	["oversized", Buffer.concat([mapResponse(), Buffer.alloc(1044)]), /oversized/],
	["version 1", Buffer.concat([hex("01"), mapResponse().subarray(1)]), /version 1/],
	["NAT-PMP's version 0", hex("00 81 0000 00000005 138c 9c41 00000078"), /version 0/],
	["a request (R bit clear)", mapResponse({ opcode: "01" }), /request/],
	["ANNOUNCE where MAP was asked", mapResponse({ opcode: "80" }), /not MAP/],
	["PEER where MAP was asked", mapResponse({ opcode: "82" }), /not MAP/],
	["another mapping's nonce", mapResponse({ nonce: "ffffffffffffffffffffffff" }), /nonce/],
	["another protocol", mapResponse({ protocol: "06" }), /protocol 6/],
	["another internal port", mapResponse({ internal: "0016" }), /internal port 22/],
	["an IPv6 external address", Buffer.concat([mapResponse().subarray(0, 44), hex("20010db8000000000000000000000001")]), /not IPv4/],
	["SUCCESS without a port", mapResponse({ port: 0 }), /without an external endpoint/],
	["SUCCESS to 0.0.0.0", mapResponse({ address: "0.0.0.0" }), /without an external endpoint/],
	["an option running past the end", mapResponse({ tail: "01 00 0010 0a000001" }), /truncated option/],
	["an option header cut short", mapResponse({ tail: "0100" }), /multiple of 4/],
];
for (const [name, bytes, reason] of pcpRefused)
	test(`PCP refuses ${name}`, (t) => {
		const decoded = pcp.decodeResponse(bytes, mapExpect);
		t.false(decoded.ok);
		if (!decoded.ok) t.regex(decoded.reason, reason);
	});

test("PCP: 65 options (each 4 bytes) are too many", (t) => {
	const decoded = pcp.decodeResponse(Buffer.concat([mapResponse(), Buffer.from("01000000".repeat(65), "hex")]), mapExpect);
	t.like(decoded, { ok: false, reason: "too many options" });
});

test("PCP: every truncation of a valid answer and 20,000 random or mutated datagrams never throw", (t) => {
	const valid = mapResponse();
	for (let length = 0; length < valid.length; length++) t.false(pcp.decodeResponse(valid.subarray(0, length), mapExpect).ok, `cut at ${length}`);
	for (let i = 0; i < 10_000; i++) {
		pcp.decodeResponse(randomBytes(Math.floor(Math.random() * 1200)), mapExpect);
		const mutated = Buffer.from(valid);
		mutated[Math.floor(Math.random() * mutated.length)] = Math.floor(Math.random() * 256);
		const decoded = pcp.decodeResponse(mutated, i % 2 ? mapExpect : { opcode: "announce" });
		if (decoded.ok && decoded.response.opcode === "map") t.true(decoded.response.nonce.equals(nonce));
	}
	t.is(pcp.pcpResultName(99), "result 99");
});

test("IPv4-mapped addresses: both ways, and nothing else passes as IPv4", (t) => {
	t.deepEqual(pcp.mappedIPv4("11.0.0.2"), hex(mapped("11.0.0.2")));
	t.is(pcp.unmappedIPv4(hex(mapped("203.0.113.7"))), "203.0.113.7");
	t.is(pcp.unmappedIPv4(hex("20010db8000000000000ffff0b000002")), undefined);
	t.is(pcp.unmappedIPv4(hex("00000000000000000000fffe0b000002")), undefined);
	t.is(pcp.unmappedIPv4(hex("ffff0b000002")), undefined);
	for (const bad of ["1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", " 1.2.3.4", "::1"]) t.false(pcp.isIPv4Text(bad), bad);
});

// ── NAT-PMP ─────────────────────────────────────────────────────────────────

test("NAT-PMP requests: the external-address request (2 bytes) and a map request (12 bytes) of RFC 6886 §3.2 and §3.3", (t) => {
	t.deepEqual(pmp.encodeAddressRequest(), hex("00 00"));
	t.deepEqual(pmp.encodeMapRequest({ protocol: "udp", internalPort: 5002, suggestedPort: 5002, lifetimeS: 7200 }), hex("00 01 0000 138a 138a 00001c20"));
	t.deepEqual(pmp.encodeMapRequest({ protocol: "tcp", internalPort: 5002, suggestedPort: 0, lifetimeS: 0 }), hex("00 02 0000 138a 0000 00000000"), "a delete");
	t.throws(() => pmp.encodeMapRequest({ protocol: "udp", internalPort: 0, suggestedPort: 0, lifetimeS: 1 }), { instanceOf: RangeError });
	t.throws(() => pmp.encodeMapRequest({ protocol: "udp", internalPort: 1, suggestedPort: 65536, lifetimeS: 1 }), { instanceOf: RangeError });
});

test("NAT-PMP responses: external address; mapped port and lifetime; an error as short as the header", (t) => {
	t.deepEqual(pmp.decodeResponse(hex("00 80 0000 00000007 0b000002"), { opcode: "address" }), { ok: true, response: { opcode: "address", result: 0, resultName: "Success", epoch: 7, externalAddress: "11.0.0.2" } });
	t.deepEqual(pmp.decodeResponse(hex("00 81 0000 00000007 138a 9c41 00000078"), { opcode: "map", protocol: "udp", internalPort: 5002 }), {
		ok: true,
		response: { opcode: "map", protocol: "udp", result: 0, resultName: "Success", epoch: 7, internalPort: 5002, externalPort: 40001, lifetimeS: 120 },
	});
	t.like(pmp.decodeResponse(hex("00 82 0002 00000007 138a 0000 00000000"), { opcode: "map", protocol: "tcp", internalPort: 5002 }), { ok: true, response: { result: 2, resultName: "Not Authorized/Refused" } });
	t.like(pmp.decodeResponse(hex("00 80 0003 00000007"), { opcode: "address" }), { ok: true, response: { result: 3, resultName: "Network Failure" } });
	t.like(pmp.decodeResponse(hex("00 81 0001 00000000"), { opcode: "map", protocol: "udp", internalPort: 5002 }), { ok: true, response: { result: 1, resultName: "Unsupported Version" } });
	t.true(pmp.decodeResponse(hex("00 81 0000 00000007 138a 0000 00000000"), { opcode: "map", protocol: "udp", internalPort: 5002 }).ok, "a delete's answer");
});

const udpMap = { opcode: "map" as const, protocol: "udp" as const, internalPort: 5002 };
const pmpRefused: [string, Buffer, { opcode: "address" } | typeof udpMap, RegExp][] = [
	["empty", Buffer.alloc(0), udpMap, /^empty$/],
	["7 bytes", hex("00 81 0000 000000"), udpMap, /truncated/],
	["a map answer of 12 bytes", hex("00 81 0000 00000007 138a 9c41"), udpMap, /16 bytes/],
	["17 bytes", hex("00 81 0000 00000007 138a 9c41 00000078 00"), udpMap, /oversized/],
	["PCP's version 2", hex("02 81 0000 00000007 138a 9c41 00000078"), udpMap, /version 2/],
	["a request echoed back", hex("00 01 0000 138a 138a 00001c20"), udpMap, /request/],
	["the TCP answer to a UDP request", hex("00 82 0000 00000007 138a 9c41 00000078"), udpMap, /opcode 130/],
	["another internal port", hex("00 81 0000 00000007 0016 9c41 00000078"), udpMap, /internal port 22/],
	["Success without a port", hex("00 81 0000 00000007 138a 0000 00000078"), udpMap, /without an external port/],
	["an address answer of 16 bytes", hex("00 80 0000 00000007 0b000002 00000000"), { opcode: "address" }, /12 bytes/],
	["Success with address 0.0.0.0", hex("00 80 0000 00000007 00000000"), { opcode: "address" }, /without an external address/],
	["a map answer to the address request", hex("00 81 0000 00000007 138a 9c41 00000078"), { opcode: "address" }, /opcode 129/],
];
for (const [name, bytes, expect, reason] of pmpRefused)
	test(`NAT-PMP refuses ${name}`, (t) => {
		const decoded = pmp.decodeResponse(bytes, expect);
		t.false(decoded.ok);
		if (!decoded.ok) t.regex(decoded.reason, reason);
	});

test("NAT-PMP: 10,000 random datagrams never throw", (t) => {
	for (let i = 0; i < 10_000; i++) pmp.decodeResponse(randomBytes(Math.floor(Math.random() * 20)), i % 2 ? udpMap : { opcode: "address" });
	t.is(pmp.natPmpResultName(42), "result 42");
});

// ── UPnP-IGD ────────────────────────────────────────────────────────────────

test("SSDP M-SEARCH for an Internet gateway, MX 1", (t) => {
	t.is(upnp.mSearch().toString(), 'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n');
});

const ssdpAnswer = (headers: string[], status = "HTTP/1.1 200 OK") => Buffer.from(`${[status, ...headers].join("\r\n")}\r\n\r\n`, "latin1");
const miniupnpdHeaders = [
	"CACHE-CONTROL: max-age=120",
	"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1",
	"USN: uuid:3e0e8a9c-6f62-4b5e-9e1a-17000000a001::urn:schemas-upnp-org:device:InternetGatewayDevice:1",
	"EXT:",
	"SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1",
	"LOCATION: http://192.168.1.1:2869/rootDesc.xml",
	'OPT: "http://schemas.upnp.org/upnp/1/0/"; ns=01',
	"01-NLS: 1",
	"BOOTID.UPNP.ORG: 1",
	"CONFIGID.UPNP.ORG: 1337",
];

test("an SSDP answer as miniupnpd sends it: its LOCATION on the gateway", (t) => {
	t.deepEqual(upnp.parseSsdpAnswer(ssdpAnswer(miniupnpdHeaders), "192.168.1.1"), {
		ok: true,
		location: "http://192.168.1.1:2869/rootDesc.xml",
		st: "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
		server: "Debian/12 UPnP/1.1 MiniUPnPd/2.3.1",
	});
});

const withHeader = (name: string, value: string | undefined) => [...miniupnpdHeaders.filter((line) => !line.toUpperCase().startsWith(`${name.toUpperCase()}:`)), ...(value === undefined ? [] : [`${name}: ${value}`])];
const ssdpRefused: [string, Buffer, RegExp][] = [
	["empty", Buffer.alloc(0), /^empty$/],
	["oversized", ssdpAnswer([...miniupnpdHeaders, `X: ${"a".repeat(2100)}`]), /oversized/],
	["binary", Buffer.concat([ssdpAnswer(miniupnpdHeaders).subarray(0, 30), hex("00ff"), ssdpAnswer(miniupnpdHeaders).subarray(30)]), /not text/],
	["no end of headers", Buffer.from("HTTP/1.1 200 OK\r\nST: x\r\n"), /truncated/],
	["a 404", ssdpAnswer(miniupnpdHeaders, "HTTP/1.1 404 Not Found"), /status line/],
	["a NOTIFY", ssdpAnswer(miniupnpdHeaders, "NOTIFY * HTTP/1.1"), /status line/],
	["a header line without a colon", ssdpAnswer([...miniupnpdHeaders, "garbage"]), /bad header line/],
	["LOCATION twice", ssdpAnswer([...miniupnpdHeaders, "LOCATION: http://10.9.9.9/x.xml"]), /twice/],
	["40 headers", ssdpAnswer([...miniupnpdHeaders, ...Array.from({ length: 30 }, (_, i) => `X-${i}: 1`)]), /too many headers/],
	["a media renderer", ssdpAnswer(withHeader("ST", "urn:schemas-upnp-org:device:MediaRenderer:1")), /not an Internet gateway/],
	["no ST", ssdpAnswer(withHeader("ST", undefined)), /not an Internet gateway/],
	["an ST in lower case (URNs are compared exactly)", ssdpAnswer(withHeader("ST", "urn:schemas-upnp-org:device:internetgatewaydevice:1")), /not an Internet gateway/],
	["no LOCATION", ssdpAnswer(withHeader("LOCATION", undefined)), /LOCATION: missing/],
	["a LOCATION on another host", ssdpAnswer(withHeader("LOCATION", "http://10.9.9.9:2869/rootDesc.xml")), /not on the gateway 192.168.1.1/],
	["a LOCATION over https", ssdpAnswer(withHeader("LOCATION", "https://192.168.1.1/rootDesc.xml")), /https: is not http:/],
	["a LOCATION with credentials", ssdpAnswer(withHeader("LOCATION", "http://user:pw@192.168.1.1/rootDesc.xml")), /credentials/],
	["a LOCATION that is no URL", ssdpAnswer(withHeader("LOCATION", "rootDesc.xml")), /not a URL/],
	["a file: LOCATION", ssdpAnswer(withHeader("LOCATION", "file:///etc/passwd")), /file: is not http:/],
];
for (const [name, bytes, reason] of ssdpRefused)
	test(`SSDP answer refused: ${name}`, (t) => {
		const answer = upnp.parseSsdpAnswer(bytes, "192.168.1.1");
		t.false(answer.ok);
		if (!answer.ok) t.regex(answer.reason, reason);
	});

const rootDesc = (connection: string, extra = "") => `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><friendlyName>testbed lab home1</friendlyName>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId><controlURL>/ctl/L3F</controlURL><eventSubURL>/evt/L3F</eventSubURL><SCPDURL>/L3F.xml</SCPDURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType><controlURL>/ctl/CmnIfCfg</controlURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList>${connection}</serviceList></device></deviceList></device></deviceList>${extra}</device></root>`;
const service = (type: string, control: string) => `<service><serviceType>${type}</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>${control}</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service>`;
const location = "http://192.168.1.1:2869/rootDesc.xml";

test("the root description: the WANIPConnection service's control URL, resolved against the description's address", (t) => {
	t.deepEqual(upnp.parseDescription(rootDesc(service("urn:schemas-upnp-org:service:WANIPConnection:1", "/ctl/IPConn")), location, "192.168.1.1"), {
		ok: true,
		serviceType: "urn:schemas-upnp-org:service:WANIPConnection:1",
		controlUrl: "http://192.168.1.1:2869/ctl/IPConn",
	});
	// IGDv2 is preferred over v1; WANPPPConnection is the last resort; URLBase wins over the location.
	const both = service("urn:schemas-upnp-org:service:WANPPPConnection:1", "/ctl/PPP") + service("urn:schemas-upnp-org:service:WANIPConnection:2", "ctl/IP2");
	t.like(upnp.parseDescription(rootDesc(both, "<URLBase>http://192.168.1.1:5000/base/</URLBase>"), location, "192.168.1.1"), { ok: true, serviceType: "urn:schemas-upnp-org:service:WANIPConnection:2", controlUrl: "http://192.168.1.1:5000/base/ctl/IP2" });
	t.like(upnp.parseDescription(rootDesc(service("urn:schemas-upnp-org:service:WANPPPConnection:1", "/ctl/PPP?a=1&amp;b=2")), location, "192.168.1.1"), { ok: true, controlUrl: "http://192.168.1.1:2869/ctl/PPP?a=1&b=2" });
});

test("a hostile root description is a reason: control URL elsewhere, no connection service, oversized, garbage", (t) => {
	const cases: [string, string][] = [
		[rootDesc(service("urn:schemas-upnp-org:service:WANIPConnection:1", "http://10.9.9.9/ctl")), "not on the gateway"],
		[rootDesc(service("urn:schemas-upnp-org:service:WANIPConnection:1", "//10.9.9.9/ctl")), "not on the gateway"],
		[rootDesc(service("urn:schemas-upnp-org:service:WANIPConnection:1", "/ctl"), "<URLBase>http://10.9.9.9/</URLBase>"), "not on the gateway"],
		[rootDesc(service("urn:schemas-upnp-org:service:WANIPConnection:1", "gopher://192.168.1.1/x")), "gopher: is not http:"],
		[rootDesc(""), "no WANIPConnection or WANPPPConnection service"],
		["<root/>", "no services"],
		[`<service>${"<service>".repeat(7000)}`, "no services"],
		["<serviceType ".repeat(4000), "no services"],
		[rootDesc(service("urn:schemas-upnp-org:service:WANIPConnection:1", "/ctl")) + " ".repeat(upnp.maxDescription), "oversized"],
	];
	for (const [xml, reason] of cases) {
		const parsed = upnp.parseDescription(xml, location, "192.168.1.1");
		t.false(parsed.ok, reason);
		if (!parsed.ok) t.true(parsed.reason.includes(reason), `${parsed.reason} ∌ ${reason}`);
	}
	for (let i = 0; i < 2000; i++) upnp.parseDescription(randomBytes(400).toString("latin1"), location, "192.168.1.1");
});

test("SOAP: AddPortMapping's request body, with the arguments in IGDv1's order and escaped", (t) => {
	const type = "urn:schemas-upnp-org:service:WANIPConnection:1";
	t.is(upnp.soapActionHeader(type, "AddPortMapping"), '"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"');
	t.is(
		upnp.soapBody(type, "AddPortMapping", upnp.addPortMappingArgs({ externalPort: 40001, protocol: "udp", internalPort: 40001, internalClient: "192.168.1.2", description: "testbed <a&b>", leaseS: 600 })),
		'<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">' +
			"<NewRemoteHost></NewRemoteHost><NewExternalPort>40001</NewExternalPort><NewProtocol>UDP</NewProtocol><NewInternalPort>40001</NewInternalPort><NewInternalClient>192.168.1.2</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>testbed &lt;a&amp;b&gt;</NewPortMappingDescription><NewLeaseDuration>600</NewLeaseDuration>" +
			"</u:AddPortMapping></s:Body></s:Envelope>\r\n",
	);
	t.deepEqual(upnp.deletePortMappingArgs({ externalPort: 40001, protocol: "tcp" }), [
		["NewRemoteHost", ""],
		["NewExternalPort", 40001],
		["NewProtocol", "TCP"],
	]);
});

test("SOAP answers: the action's response and its values; a fault's UPnP error code; anything else is a reason", (t) => {
	const envelope = (body: string) => `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>${body}</s:Body></s:Envelope>\r\n`;
	t.deepEqual(upnp.parseSoapResponse(200, envelope('<u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewExternalIPAddress>11.0.0.2</NewExternalIPAddress></u:GetExternalIPAddressResponse>'), "GetExternalIPAddress"), {
		ok: true,
		values: { NewExternalIPAddress: "11.0.0.2" },
	});
	t.deepEqual(upnp.parseSoapResponse(200, envelope('<u:AddPortMappingResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"/>'), "AddPortMapping"), { ok: true, values: {} });
	const fault = envelope(
		'<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault>',
	);
	t.deepEqual(upnp.parseSoapResponse(500, fault, "AddPortMapping"), { ok: false, code: 718, reason: "UPnP error 718 ConflictInMappingEntry" });
	t.deepEqual(upnp.parseSoapResponse(500, "<html>oops</html>", "AddPortMapping"), { ok: false, reason: "HTTP 500" });
	t.like(upnp.parseSoapResponse(200, envelope("<u:DeletePortMappingResponse/>"), "AddPortMapping"), { ok: false, reason: "HTTP 200 without AddPortMappingResponse" });
	t.like(upnp.parseSoapResponse(200, "x".repeat(upnp.maxSoapResponse + 1), "AddPortMapping"), { ok: false });
	t.like(upnp.parseSoapResponse(500, envelope("<errorCode>606</errorCode><errorDescription>\u0007Action not authorized</errorDescription>"), "AddPortMapping"), { ok: false, code: 606, reason: "UPnP error 606 ?Action not authorized" });
});

// ── the default gateway ─────────────────────────────────────────────────────

test("the default gateway from /proc/net/route: the default route with the lowest metric; its address is little-endian hex", (t) => {
	const table = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth1\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t00000000\t0100000B\t0003\t0\t0\t10\t00000000\t0\t0\t0
`;
	t.deepEqual(parseDefaultGateway(table), { address: "11.0.0.1", iface: "eth0" });
	t.deepEqual(parseDefaultGateway(table.split("\n").filter((line) => !line.includes("0100000B")).join("\n")), { address: "192.168.1.1", iface: "eth1" });
	t.is(parseDefaultGateway(table.split("\n").slice(0, 2).join("\n")), undefined, "no default route");
	t.is(parseDefaultGateway("Iface\tDestination\tGateway\neth0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\n"), undefined, "a default route without a gateway (a point-to-point link)");
	t.is(parseDefaultGateway("garbage\n\u0000\n"), undefined);
});
