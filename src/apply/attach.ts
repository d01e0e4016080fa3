// A temporary node attached to a running lab (e.g. a STUN server for `probe`): recorded in the lab's
// ledger before it is created, so `down` removes it even if testbed dies, and removed after use.
import { Netmask } from "netmask";
import type { Lab, LabNode } from "../resolve/lab.ts";
import { overlaps } from "../validate/addresses.ts";
import { ApplyError } from "../errors.ts";
import { requireLedger, writeLedger } from "./ledger.ts";
import { lockLab } from "./lock.ts";
import { netnsIdentity, netnsInode } from "./namespaces.ts";
import { planAttachment } from "../plan/plan.ts";
import { renderPlan } from "../render/batch.ts";
import { configureNamespaces, runRootBatch } from "./configure.ts";
import { detectFeatures } from "./features.ts";
import { stateDir } from "./state-files.ts";
import { removeNamespaces } from "./teardown.ts";

export interface AttachedHost {
	node: LabNode;
	/** The host's addresses, in order. */
	addresses: string[];
	detach(): Promise<void>;
}

/** A free /29 in 198.18.0.0/15 (RFC 2544 benchmarking space) that overlaps nothing in the lab. */
function freeSubnet(lab: Lab): Netmask {
	const used = lab.nodes.flatMap((node) => node.interfaces.flatMap((iface) => iface.addresses.map((address) => address.network)));
	for (let index = 0; index < 16384; index++) {
		const block = new Netmask(`198.18.0.0/29`).next(index);
		if (!used.some((network) => overlaps(network, `${block.base}/29`))) return block;
	}
	throw new ApplyError("no free subnet in 198.18.0.0/15 for a temporary node", { command: "attach", stderr: "", rolledBack: true });
}

/** Attach host `name` with `count` addresses to `router` through a new veth pair. */
export async function attachHost(lab: Lab, router: LabNode, name: string, count: number): Promise<AttachedHost> {
	const block = freeSubnet(lab);
	const hosts: string[] = [];
	block.forEach((ip) => hosts.push(ip));
	const [gateway, ...own] = hosts;
	const addresses = own.slice(0, count);
	const netns = `${lab.name}-${name}`;
	if (netnsInode(netns) !== null || lab.nodes.some((node) => node.netns === netns))
		throw new ApplyError(`cannot attach a temporary node: namespace ${netns} exists`, { command: "attach", stderr: "", rolledBack: true });
	const routerIface = "tb-attach0";
	const node: LabNode = {
		name,
		kind: "host",
		netns,
		forwarding: false,
		interfaces: [{ name: "eth0", type: "veth", addresses: addresses.map((ip) => ({ ip, prefix: 29, cidr: `${ip}/29`, network: `${block.base}/29` })), pos: { line: 1, col: 1 } }],
		routes: [{ to: "default", via: gateway, dev: "eth0", auto: true, pos: { line: 1, col: 1 } }],
		pos: { line: 1, col: 1 },
	};
	const since = Date.now();
	const lock = await lockLab(lab.name);
	try {
		const ledger = requireLedger(lab.name);
		ledger.namespaces.push({ name: netns, node: name, inode: null });
		writeLedger(ledger);
		const fail = async (what: string, stderr: string) => {
			await removeLocked();
			throw new ApplyError(`could not attach a temporary node to lab "${lab.name}": ${what}`, { command: what, stderr, rolledBack: true });
		};
		const rendered = renderPlan(planAttachment(lab, node, { node: router, iface: routerIface, gateway: `${gateway}/29` }, (await detectFeatures()).features), stateDir(lab.name));
		try {
			await runRootBatch(lab, rendered.root);
		} catch (error) {
			await fail("ip -batch (namespace and veth pair)", (error as Error).message);
		}
		const entry = ledger.namespaces.find((candidate) => candidate.name === netns)!;
		const identity = netnsIdentity(netns);
		entry.inode = identity?.inode ?? null;
		if (identity) entry.born = identity.born;
		writeLedger(ledger);
		try {
			await configureNamespaces(lab, rendered.namespaces);
		} catch (error) {
			await fail(`configuring ${netns} and ${router.netns}`, (error as Error).message);
		}
	} finally {
		lock.release();
	}
	/** Remove the namespace (its veth pair goes with it) and its ledger entry; the caller holds the lock. */
	async function removeLocked(): Promise<void> {
		const ledger = requireLedger(lab.name);
		await removeNamespaces(ledger.namespaces.filter((candidate) => candidate.name === netns), since);
		ledger.namespaces = ledger.namespaces.filter((candidate) => candidate.name !== netns);
		writeLedger(ledger);
	}
	async function detach(): Promise<void> {
		const lock = await lockLab(lab.name);
		try {
			await removeLocked();
		} finally {
			lock.release();
		}
	}
	return { node, addresses, detach };
}
