// Generated topologies for tests and benchmarks: N units of one peer behind its own NAT, all NATs on one router.
export function unitsTopology(name: string, units: number): string {
	const lines = [`name: ${name}`, "nodes:", "  internet: { kind: router }"];
	for (let i = 0; i < units; i++) lines.push(`  nat${i}: { kind: nat }`, `  peer${i}: {}`);
	lines.push("links:");
	for (let i = 0; i < units; i++) {
		lines.push(`  - { endpoints: [peer${i}:eth0, nat${i}:lan], subnet: 10.${Math.floor(i / 256)}.${i % 256}.0/24 }`);
		const base = 4 * i;
		lines.push(`  - { endpoints: [nat${i}:wan, internet:n${i}], subnet: 100.${64 + Math.floor(base / 65536)}.${Math.floor(base / 256) % 256}.${base % 256}/30 }`);
	}
	return `${lines.join("\n")}\n`;
}
