// Generated topologies for tests and benchmarks: N units of one peer behind its own NAT, all NATs on one router.
/**
 * `units` of a NAT and a peer behind it, all on one internet router. `containers`: every other peer
 * is a lightweight container (private /etc and /tmp with a file placed, cpu, memory and pids limits);
 * "all": every node is.
 */
export function unitsTopology(name: string, units: number, options: { containers?: boolean | "all"; dualStack?: boolean } = {}): string {
	// dualStack: every link also carries IPv6 (each NAT then keeps an IPv6 firewall, the router a route per home).
	const v6 = (net: number, i: number) => (options.dualStack ? `, subnet6: 2001:db8:${net}:${i.toString(16)}::/64` : "");
	const container = 'private: [/etc, /tmp], files: { /etc/peer.conf: "peer = ${internet}\\n" }, limits: { cpu: 0.5, memory: 64M, pids: 64, disk: 4M }';
	const all = options.containers === "all";
	const lines = [`name: ${name}`, "nodes:", `  internet: { kind: router${all ? `, ${container}` : ""} }`];
	for (let i = 0; i < units; i++) lines.push(`  nat${i}: { kind: nat${all ? `, ${container}` : ""} }`, `  peer${i}: ${all || (options.containers && i % 2 === 0) ? `{ ${container} }` : "{}"}`);
	lines.push("links:");
	for (let i = 0; i < units; i++) {
		lines.push(`  - { endpoints: [peer${i}:eth0, nat${i}:lan], subnet: 10.${Math.floor(i / 256)}.${i % 256}.0/24${v6(1, i)} }`);
		const base = 4 * i;
		lines.push(`  - { endpoints: [nat${i}:wan, internet:n${i}], subnet: 100.${64 + Math.floor(base / 65536)}.${Math.floor(base / 256) % 256}.${base % 256}/30${v6(2, i)} }`);
	}
	return `${lines.join("\n")}\n`;
}
