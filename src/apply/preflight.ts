// Checks before touching the kernel: root, the tools a plan needs, and the names a lab needs being free.
import { relative } from "node:path";
import { LabStateError, MissingFeatureError } from "../errors.ts";
import type { Plan } from "../plan/operations.ts";
import type { Lab } from "../resolve/lab.ts";
import { currentUser, listLedgers, ownedByOther, ownerOf, readLedger, type Ledger } from "./ledger.ts";
import { netnsIdentity, sameNamespace } from "./namespaces.ts";
import { which } from "./which.ts";

export const installHint = "apt-get install -y iproute2 nftables iptables conntrack procps util-linux (or `make setup`)";

export function isRoot(): boolean {
	return process.getuid?.() === 0;
}

/** Commands that only look at a lab (they still need root to enter its namespaces). */
const readOnly = new Set(["watch", "nat-table", "ps", "logs", "probe", "reach", "capture"]);

export function requireRoot(command: string): void {
	if (!isRoot())
		throw new MissingFeatureError(`\`testbed ${command}\` ${readOnly.has(command) ? "reads the lab's network namespaces" : "changes network namespaces"} and needs root; run it with sudo (validate, plan and graph of a file work without root)`, "root", "sudo testbed …");
}

export function requireTools(plan: Plan): void {
	const ops = [...plan.root, ...plan.namespaces.flatMap((ns) => ns.operations)];
	const needed = new Set(["ip", "sysctl", "nsenter", "setpriv"]);
	if (ops.some((op) => op.op === "nat" || op.op === "firewall6" || op.op === "nft-loss")) needed.add("nft");
	if (ops.some((op) => op.op === "qdisc")) needed.add("tc");
	if (ops.some((op) => op.op === "iptables")) needed.add("iptables-restore");
	const missing = [...needed].filter((tool) => !which(tool));
	if (missing.length > 0) throw new MissingFeatureError(`this host lacks ${missing.join(", ")}; install with: ${installHint}`, missing[0], installHint);
}

/** "alice" or "you (alice)": who brought a lab up, from where the caller stands. */
export function ownerText(ledger: Ledger, user = currentUser()): string {
	const owner = ownerOf(ledger);
	return owner === user ? `you (${owner})` : owner;
}

/** How to bring the same file up as a lab of one's own. */
function renameFix(lab: Lab): string {
	const file = lab.file.startsWith("<") ? "FILE" : relative(process.cwd(), lab.file).startsWith("..") ? lab.file : relative(process.cwd(), lab.file);
	return `testbed up ${file} --name NAME (its namespaces become NAME-…)`;
}

/** `up` of a lab whose name is taken: whose it is, since when, and the ways out. */
export function labExistsError(lab: Lab, existing: Ledger): LabStateError {
	const state = existing.state === "up" ? "up" : `in state "${existing.state}"`;
	return new LabStateError(
		`lab "${lab.name}" is already ${state}, brought up by ${ownerText(existing)} at ${existing.createdAt}\n` +
			`run your own copy under another name: ${renameFix(lab)}; ` +
			(ownedByOther(existing) ? `or, if ${ownerOf(existing)} agrees, replace theirs: \`testbed up … --force\`` : `or replace it: \`testbed up … --force\` (or \`testbed down ${lab.name}\` first)`),
		"LAB_EXISTS",
	);
}

/**
 * The namespaces of `names` that exist already, each with the lab whose ledger holds it (the
 * namespace there now being the one that lab made) or, when none does, none: a foreign namespace.
 */
export function namespaceHolders(names: string[]): { netns: string; holder?: Ledger }[] {
	const taken = names.filter((name) => netnsIdentity(name) !== null);
	if (taken.length === 0) return [];
	const holders = new Map<string, Ledger>();
	for (const name of listLedgers()) {
		let ledger: Ledger | undefined;
		try {
			ledger = readLedger(name);
		} catch {
			continue; // a damaged ledger proves nothing
		}
		for (const entry of ledger?.namespaces ?? []) if (entry.inode === null || sameNamespace(entry, netnsIdentity(entry.name))) holders.set(entry.name, ledger!);
	}
	return taken.map((netns) => ({ netns, holder: holders.get(netns) }));
}

/** Refuse a lab whose namespaces exist: say, for each, which lab holds it and who brought that up, or that testbed did not make it. */
export function requireFreeNamespaces(lab: Lab, names: string[]): void {
	const taken = namespaceHolders(names);
	if (taken.length === 0) return;
	const lines: string[] = [];
	const listed = (netns: string[]) => `namespace${netns.length > 1 ? "s" : ""} ${netns.join(", ")} already exist${netns.length > 1 ? "" : "s"}`;
	const byLab = new Map<string, { ledger: Ledger; netns: string[] }>();
	for (const { netns, holder } of taken) if (holder) (byLab.get(holder.lab) ?? byLab.set(holder.lab, { ledger: holder, netns: [] }).get(holder.lab)!).netns.push(netns);
	for (const { ledger, netns } of byLab.values())
		lines.push(`${listed(netns)}: ${netns.length > 1 ? "they belong" : "it belongs"} to lab "${ledger.lab}", brought up by ${ownerText(ledger)} at ${ledger.createdAt}${ownedByOther(ledger) ? "" : ` (\`testbed down ${ledger.lab}\` frees ${netns.length > 1 ? "them" : "it"})`}`);
	const foreign = taken.filter((entry) => !entry.holder).map((entry) => entry.netns);
	if (foreign.length > 0) lines.push(`${listed(foreign)} and testbed did not create ${foreign.length > 1 ? "them" : "it"}: no lab on this host owns ${foreign.length > 1 ? "them" : "it"}`);
	lines.push(
		`run the lab under a name of its own: ${renameFix(lab)}` +
			(foreign.length > 0 ? `; or, if ${foreign.length > 1 ? "they are leftovers" : "it is a leftover"} nobody uses, remove ${foreign.length > 1 ? "them" : "it"}: ${foreign.map((netns) => `ip netns del ${netns}`).join("; ")}` : ""),
	);
	throw new LabStateError(lines.join("\n"), "NAMESPACE_EXISTS");
}
