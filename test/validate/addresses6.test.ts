// IPv6 arithmetic (src/validate/addresses6.ts): RFC 5952 text, prefixes, host addresses in order.
import test from "ava";
import fc from "fast-check";
import { isIP } from "node:net";
import { contains6, hostAddresses6, interfaceAddress6, isCidr6, isIpv6, range6 } from "../../src/validate/addresses6.ts";
import { fcOptions, logSeed } from "../helpers/fuzz.ts";

test.beforeEach((t) => logSeed(t));

test("addresses a lab may give an interface: global unicast and unique local, not the kernel's own kinds", (t) => {
	for (const ok of ["2001:db8::1", "2001:DB8:0:0:1::1", "fd00::1", "2a00:1450::"]) t.true(isIpv6(ok), ok);
	for (const bad of ["::", "::1", "fe80::1", "fe80::1%eth0", "ff02::1", "::ffff:192.0.2.1", "192.0.2.1", "2001:db8::g", "2001:db8:::1", ""]) t.false(isIpv6(bad), bad);
	t.true(isCidr6("2001:db8:1::/64"));
	for (const bad of ["2001:db8::/129", "2001:db8::", "2001:db8::/64/1", "10.0.0.0/24", "2001:db8::/064x"]) t.false(isCidr6(bad), bad);
});

test("interface addresses are kept in RFC 5952 form, with their prefix", (t) => {
	t.deepEqual(interfaceAddress6("2001:DB8:0:1:0:0:0:5/64"), { ip: "2001:db8:0:1::5", prefix: 64, cidr: "2001:db8:0:1::5/64", network: "2001:db8:0:1::/64" });
	t.is(interfaceAddress6("2001:db8:0:0:1:0:0:1/48").ip, "2001:db8::1:0:0:1", "the longest run of zeros is the one shortened");
	t.is(interfaceAddress6("2001:db8:1:2:3:4:5:6/56").network, "2001:db8:1::/56");
	t.is(interfaceAddress6("2001:db8:1:2ff::1/56").network, "2001:db8:1:200::/56");
});

test("host addresses start at ::1 (the all-zeros one is the subnet-router anycast address); a /127 has both", (t) => {
	t.deepEqual([...hostAddresses6("2001:db8:1::/126")], ["2001:db8:1::1", "2001:db8:1::2", "2001:db8:1::3"]);
	t.deepEqual([...hostAddresses6("2001:db8:1::/127")], ["2001:db8:1::", "2001:db8:1::1"]);
	t.is([...hostAddresses6("2001:db8::/64", 1000)].length, 1000, "a /64 is handed out lazily");
	t.deepEqual([...hostAddresses6("2001:db8:1::fffe/127")], ["2001:db8:1::fffe", "2001:db8:1::ffff"]);
});

test("contains and ranges agree with a byte-wise comparison for random addresses and prefixes", (t) => {
	const address = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }).map((groups) => groups.map((group) => group.toString(16)).join(":"));
	fc.assert(
		fc.property(address, address, fc.integer({ min: 0, max: 128 }), (a, b, prefix) => {
			if (isIP(a) !== 6 || isIP(b) !== 6) return true;
			const bits = (text: string) => interfaceAddress6(`${text}/128`).ip.length >= 0 && BigInt(`0x${text.split(":").map((group) => group.padStart(4, "0")).join("")}`);
			const [x, y] = [bits(a) as bigint, bits(b) as bigint];
			const shift = BigInt(128 - prefix);
			const same = prefix === 0 || x >> shift === y >> shift;
			const network = interfaceAddress6(`${a}/${prefix}`).network;
			const [first, last] = range6(network);
			return contains6(network, b) === same && first <= x && x <= last && last - first === (1n << shift) - 1n;
		}),
		fcOptions(500),
	);
	t.pass();
});
