// The name files every node sees (bind-mounted over /etc/hosts and /etc/resolv.conf inside it): each
// node's name resolves to its first address, and no DNS server is asked. Pure.
import type { Lab } from "../resolve/lab.ts";
import { firstAddress } from "../resolve/commands.ts";

/** /etc/hosts inside the lab's nodes: localhost, then every node with an address. */
export function hostsFile(lab: Lab): string {
	const lines = [`# /etc/hosts inside lab "${lab.name}" (written by testbed; the host's own file is untouched)`, "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];
	for (const node of lab.nodes) {
		const address = firstAddress(node);
		if (address) lines.push(`${address}\t${node.name}`);
	}
	return `${lines.join("\n")}\n`;
}

/** /etc/resolv.conf inside the lab: no name server (the host's is not reachable from inside), so unknown names fail at once. */
export function resolvConf(lab: Lab): string {
	return `# /etc/resolv.conf inside lab "${lab.name}" (written by testbed): no DNS; node names are in /etc/hosts\noptions timeout:1 attempts:1\n`;
}
