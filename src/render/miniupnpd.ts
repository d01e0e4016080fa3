// What a NAT that offers port mapping needs besides its own rules: the configuration of the daemon
// that answers (Debian's miniupnpd, nftables backend), the nftables table it writes its mappings into,
// the rules that mirror its grants into testbed's NAT maps (so that an inside endpoint's outbound
// traffic leaves from its granted public port), and its lease file read back.
//
// miniupnpd 2.3.1 creates no table of its own and always writes to an `inet` table: testbed makes
// `table inet miniupnpd` with the chains it names in the configuration, hooked just before testbed's
// own NAT chains. Inbound traffic to a granted port is DNATed there and let through by testbed's
// forward chain (`ct status dnat accept`), whatever the declared filtering.
// Pure: paths come in, text goes out.
import type { LabNat } from "../resolve/lab.ts";
import { portMappingPorts, type PortMappingProtocol } from "../vocabulary/port-mapping.ts";

export interface PortMappingFiles {
	conf: string;
	pid: string;
	leases: string;
}

/** The table miniupnpd writes into, and its chains (names ≤ 30 characters, as miniupnpd requires). */
export const daemonTable = { name: "miniupnpd", forward: "forward_miniupnpd", prerouting: "prerouting_miniupnpd", postrouting: "postrouting_miniupnpd" } as const;

/** A stable UUID for the NAT's UPnP device, from the lab's and node's names (FNV-1a, spread over 128 bits). */
export function deviceUuid(lab: string, node: string): string {
	let hex = "";
	for (let round = 0; round < 4; round++) {
		let hash = 0x811c9dc5 ^ round;
		for (const char of `${lab}/${node}`) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
		hex += hash.toString(16).padStart(8, "0");
	}
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Where a NAT's daemon keeps its configuration, pid and leases, in the lab's state folder. */
export function daemonFiles(stateDir: string, node: string): PortMappingFiles {
	const base = `${stateDir}/portmap-${node}`;
	return { conf: `${base}.conf`, pid: `${base}.pid`, leases: `${base}.leases` };
}

/** The daemon's command line (in the NAT's namespace). */
export const daemonCommand = (binary: string, files: PortMappingFiles) => [binary, "-f", files.conf, "-P", files.pid, "-d"];

/**
 * miniupnpd.conf for one NAT; who may ask: the NAT's inside subnets. Permission
 * rules grant the declared public ports for any inside port: a rule that left some inside ports out
 * makes miniupnpd 2.3.1 scan all 65,535 public ports for a NAT-PMP request on such a port.
 */
export function renderDaemonConf(lab: string, node: string, nat: LabNat, files: PortMappingFiles): string {
	const spec = nat.portMapping!;
	const has = (protocol: PortMappingProtocol) => spec.protocols.includes(protocol);
	return [
		`# miniupnpd for nat ${node} of lab ${lab}, written by testbed: ${spec.protocols.join(", ")}`,
		`ext_ifname=${nat.outside}`,
		...nat.inside.map((iface) => `listening_ip=${iface}`),
		`http_port=${portMappingPorts.http}`,
		`enable_upnp=${has("upnp") ? "yes" : "no"}`,
		`# one switch for NAT-PMP and PCP (both on UDP ${portMappingPorts.pmp}); testbed's input chain drops the one not offered`,
		`enable_natpmp=${has("nat-pmp") || has("pcp") ? "yes" : "no"}`,
		`secure_mode=${spec.secure ? "yes" : "no"}`,
		`system_uptime=no`,
		`notify_interval=60`,
		`clean_ruleset_interval=600`,
		`uuid=${deviceUuid(lab, node)}`,
		`serial=${node}`,
		`model_number=1`,
		`friendly_name=testbed ${lab} ${node}`,
		`lease_file=${files.leases}`,
		`min_lifetime=${spec.leaseMinS}`,
		`max_lifetime=${spec.leaseMaxS}`,
		`upnp_table_name=${daemonTable.name}`,
		`upnp_nat_table_name=${daemonTable.name}`,
		`upnp_forward_chain=${daemonTable.forward}`,
		`upnp_nat_chain=${daemonTable.prerouting}`,
		`upnp_nat_postrouting_chain=${daemonTable.postrouting}`,
		...spec.ports.flatMap(([low, high]) => spec.insideNetworks.map((network) => `allow ${low}-${high} ${network} 1-65535`)),
		`deny 0-65535 0.0.0.0/0 0-65535`,
		``,
	].join("\n");
}

/** The daemon's table, empty: made with the NAT's rules (and flushed by a NAT reboot). */
export function renderDaemonTable(): string[] {
	const t = daemonTable;
	return [
		`# the port-mapping daemon's table (miniupnpd adds one rule per granted mapping to its chains)`,
		`table inet ${t.name} {`,
		`\tchain ${t.forward} {`,
		`\t}`,
		`\tchain ${t.prerouting} {`,
		`\t}`,
		`\tchain ${t.postrouting} {`,
		`\t}`,
		`\tchain prerouting {`,
		`\t\ttype nat hook prerouting priority dstnat - 1; policy accept;`,
		`\t\tjump ${t.prerouting} comment "a granted mapping: DNAT to the inside endpoint"`,
		`\t}`,
		`\tchain postrouting {`,
		`\t\ttype nat hook postrouting priority srcnat - 1; policy accept;`,
		`\t\tjump ${t.postrouting}`,
		`\t}`,
		`}`,
	];
}

/** One granted mapping, as miniupnpd's lease file has it. */
export interface Lease {
	proto: "udp" | "tcp";
	publicPort: number;
	insideAddress: string;
	insidePort: number;
	/** Unix seconds when it ends; 0: never (a UPnP mapping asked without a lease). */
	expires: number;
	description: string;
	/** Who asked, from the description miniupnpd writes for NAT-PMP and PCP; anything else is UPnP. */
	protocol: PortMappingProtocol;
}

const maxLeases = 4096;

/** `UDP:5000:192.168.1.2:5000:1796069060:libminiupnpc` per line; lines that are not leases are skipped. */
export function parseLeases(text: string): Lease[] {
	const leases: Lease[] = [];
	for (const line of text.split("\n")) {
		if (leases.length >= maxLeases) break;
		const match = /^(UDP|TCP):(\d{1,5}):(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5}):(\d{1,12}):(.*)$/.exec(line);
		if (!match) continue;
		const [publicPort, insidePort] = [Number(match[2]), Number(match[4])];
		if (publicPort < 1 || publicPort > 65535 || insidePort < 1 || insidePort > 65535) continue;
		const description = match[6].slice(0, 120);
		leases.push({
			proto: match[1] === "UDP" ? "udp" : "tcp",
			publicPort,
			insideAddress: match[3],
			insidePort,
			expires: Number(match[5]),
			description,
			protocol: description.startsWith("NAT-PMP ") ? "nat-pmp" : description.startsWith("PCP ") ? "pcp" : "upnp",
		});
	}
	return leases;
}

/**
 * `nft -f` text that makes testbed's `granted` maps hold exactly these leases (one transaction): the
 * inside endpoint's outbound traffic then leaves from its public port, hairpinning reaches it, and no
 * other endpoint keeps that port by port preservation. Elements end with their lease.
 */
export function renderGrantSync(leases: Lease[], nowS: number): string {
	const lines = [`flush map ip testbed granted`, `flush map ip testbed granted-public`];
	// A key once: an endpoint with two mappings leaves from the first (the daemon grants each public port once).
	const endpoints = new Set<string>();
	const ports = new Set<string>();
	for (const lease of leases) {
		if (lease.expires !== 0 && lease.expires <= nowS) continue;
		const timeout = lease.expires === 0 ? "" : ` timeout ${lease.expires - nowS}s`;
		const endpoint = `${lease.insideAddress} . ${lease.proto} . ${lease.insidePort}`;
		const port = `${lease.proto} . ${lease.publicPort}`;
		if (!endpoints.has(endpoint)) lines.push(`add element ip testbed granted { ${endpoint}${timeout} : ${lease.publicPort} }`);
		if (!ports.has(port)) lines.push(`add element ip testbed granted-public { ${port}${timeout} : ${lease.insideAddress} . ${lease.insidePort} }`);
		endpoints.add(endpoint);
		ports.add(port);
	}
	return `${lines.join("\n")}\n`;
}

/** What a NAT reboot does to the daemon's state besides restarting it: its rules and testbed's mirror of them go. */
export function renderForgetGrants(): string {
	const t = daemonTable;
	return [`flush chain inet ${t.name} ${t.forward}`, `flush chain inet ${t.name} ${t.prerouting}`, `flush chain inet ${t.name} ${t.postrouting}`, `flush map ip testbed granted`, `flush map ip testbed granted-public`, ``].join("\n");
}
