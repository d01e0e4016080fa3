// IPv6 address and prefix arithmetic (ipaddr.js parses; BigInt counts). Addresses are kept in their
// RFC 5952 text (lowercase, the longest run of zeros as ::), so that plans and golden files are stable.
import ipaddr from "ipaddr.js";
import type { InterfaceAddress } from "./addresses.ts";

const bits = 128n;

/** Kinds of IPv6 address an interface of a lab cannot be given (the kernel's link-local one, loopback, multicast…). */
const special = new Set(["unspecified", "loopback", "linkLocal", "multicast", "ipv4Mapped"]);

/** A plain unicast IPv6 address: no zone (`%eth0`), no IPv4 in it, not loopback, link-local or multicast. */
export function isIpv6(text: string): boolean {
	return !/[%.]/.test(text) && ipaddr.IPv6.isValid(text) && !special.has(ipaddr.IPv6.parse(text).range());
}

/** `address/n`, 0 ≤ n ≤ 128. */
export function isCidr6(text: string): boolean {
	const [ip, prefix, ...rest] = text.split("/");
	return rest.length === 0 && isIpv6(ip) && prefix !== undefined && /^(12[0-8]|1[01]\d|[1-9]?\d)$/.test(prefix);
}

const toBig = (ip: string): bigint => ipaddr.IPv6.parse(ip).toByteArray().reduce((sum, byte) => (sum << 8n) | BigInt(byte), 0n);

function fromBig(value: bigint): string {
	const bytes: number[] = [];
	for (let i = 0; i < 16; i++) bytes.unshift(Number((value >> BigInt(8 * i)) & 0xffn));
	return (ipaddr.fromByteArray(bytes) as ipaddr.IPv6).toRFC5952String();
}

const mask = (prefix: number): bigint => (prefix === 0 ? 0n : ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n));

/** The canonical text of an address. */
export function canonical6(ip: string): string {
	return ipaddr.IPv6.parse(ip).toRFC5952String();
}

/** An interface address (canonical): the host address and the prefix it sits on. */
export function interfaceAddress6(cidr: string): InterfaceAddress {
	const [ip, prefixText] = cidr.split("/");
	const prefix = Number(prefixText);
	const address = canonical6(ip);
	return { ip: address, prefix, cidr: `${address}/${prefix}`, network: `${fromBig(toBig(ip) & mask(prefix))}/${prefix}` };
}

export function contains6(subnet: string, ip: string): boolean {
	const [network, prefix] = subnet.split("/");
	return (toBig(ip) & mask(Number(prefix))) === (toBig(network) & mask(Number(prefix)));
}

/** A prefix as its first and last address, for overlap checks. */
export function range6(cidr: string): [bigint, bigint] {
	const [network, prefix] = cidr.split("/");
	const first = toBig(network) & mask(Number(prefix));
	return [first, first | (((1n << bits) - 1n) ^ mask(Number(prefix)))];
}

/** A prefix with one bit of its network part flipped (bit 0 is the first, leftmost one). */
export function flipBit6(cidr: string, bit: number): string {
	const [network, prefix] = cidr.split("/");
	return interfaceAddress6(`${fromBig(toBig(network) ^ (1n << (bits - 1n - BigInt(bit))))}/${prefix}`).network;
}

/**
 * Host addresses of a prefix in order, as a lazy sequence: ::1 onwards (the all-zeros address is the
 * subnet-router anycast address), up to `limit` of them (a /64 has 2^64).
 */
export function* hostAddresses6(subnet: string, limit = 1 << 20): Generator<string> {
	const [first, last] = range6(subnet);
	const start = Number(subnet.split("/")[1]) >= 127 ? first : first + 1n;
	for (let address = start, count = 0; address <= last && count < limit; address++, count++) yield fromBig(address);
}
