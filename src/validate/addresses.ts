// IPv4 address and subnet arithmetic (the netmask package does the math).
import { Netmask, ip2long, long2ip } from "netmask";

const octet = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const ipv4 = new RegExp(`^${octet}\\.${octet}\\.${octet}\\.${octet}$`);

export function isIpv4(text: string): boolean {
	return ipv4.test(text);
}

/** `a.b.c.d/n` with 0 ≤ n ≤ 32. */
export function isCidr(text: string): boolean {
	const [ip, prefix, ...rest] = text.split("/");
	return rest.length === 0 && isIpv4(ip) && prefix !== undefined && /^(3[0-2]|[12]?\d)$/.test(prefix);
}

/** An interface address: the host address and the subnet it sits on. */
export interface InterfaceAddress {
	ip: string;
	prefix: number;
	/** `ip/prefix`, as `ip address add` takes it. */
	cidr: string;
	/** The subnet, e.g. `10.0.1.0/24`. */
	network: string;
}

export function interfaceAddress(cidr: string): InterfaceAddress {
	const [ip, prefix] = cidr.split("/");
	const block = new Netmask(cidr);
	return { ip, prefix: Number(prefix), cidr, network: `${block.base}/${block.bitmask}` };
}

export function subnetOf(cidr: string): Netmask {
	return new Netmask(cidr);
}

export function contains(subnet: string, ip: string): boolean {
	return new Netmask(subnet).contains(ip);
}

/** A subnet as the numbers of its first and last address, for fast comparisons. */
export function range(cidr: string): [number, number] {
	const block = new Netmask(cidr);
	const first = ip2long(block.base);
	return [first, first + block.size - 1];
}

export function overlaps(a: string, b: string): boolean {
	const [x, y] = [new Netmask(a), new Netmask(b)];
	return x.contains(y.base) || y.contains(x.base);
}

/** Network or broadcast address of a subnet with room for hosts (prefix < 31). */
export function isReserved(cidr: string): boolean {
	const block = new Netmask(cidr);
	const ip = cidr.split("/")[0];
	return block.bitmask < 31 && (ip === block.base || ip === block.broadcast);
}

/** Usable host addresses of a subnet, in order, as a lazy sequence. */
export function* hostAddresses(subnet: string): Generator<string> {
	const block = new Netmask(subnet);
	const first = block.bitmask >= 31 ? ip2long(block.base) : ip2long(block.first);
	const last = block.bitmask >= 31 ? ip2long(block.base) + block.size - 1 : ip2long(block.last);
	for (let address = first; address <= last; address++) yield long2ip(address);
}
