// Packet captures inside a node with tcpdump, written as pcap for Wireshark.
import { createInterface } from "node:readline";
import { requireNode, type Lab, type LabNode } from "../resolve/lab.ts";
import { LabStateError, MissingFeatureError, NodeNotFoundError } from "../errors.ts";
import { inNamespace } from "../render/batch.ts";
import { spawnLongRunning } from "../apply/spawn.ts";
import { which } from "../apply/which.ts";

export interface Capture {
	node: string;
	iface: string;
	file?: string;
	/** Stop tcpdump; resolves with the number of packets it captured. */
	stop(): Promise<{ packets: number }>;
}

export function captureTarget(lab: Lab, target: string): { node: LabNode; iface: string } {
	const [name, iface] = target.split(":");
	const node = requireNode(lab, name);
	const names = node.interfaces.map((candidate) => candidate.name);
	if (!iface || !names.includes(iface)) throw new NodeNotFoundError(`node "${name}" has no interface "${iface ?? ""}"; write NODE:IFACE with one of: ${names.join(", ")}`);
	return { node, iface };
}

/** Start tcpdump on `iface` of `node`; with `file` it writes pcap, else `onLine` gets decoded lines. */
export async function startCapture(node: LabNode, iface: string, options: { file?: string; onLine?: (line: string) => void } = {}): Promise<Capture> {
	if (!which("tcpdump")) throw new MissingFeatureError("capture needs tcpdump, which this host lacks", "tcpdump", "apt-get install -y tcpdump (or `make setup`)");
	// --immediate-mode: without it packets wait in the capture ring for up to a second, and a short
	// capture stopped with SIGINT loses them.
	const argv = ["tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", ...(options.file ? ["-w", options.file] : ["-l"])];
	const child = spawnLongRunning(inNamespace(node.netns, argv));
	child.stdin.end();
	let packets = 0;
	let stderr = "";
	const listening = new Promise<void>((resolve, reject) => {
		createInterface({ input: child.stderr }).on("line", (line) => {
			stderr += `${line}\n`;
			if (/listening on/.test(line)) resolve();
			const count = /^(\d+) packets? captured/.exec(line);
			if (count) packets = Number(count[1]);
		});
		child.then(() => reject(new LabStateError(`tcpdump on ${node.name}:${iface} stopped: ${stderr.trim()}`, "CAPTURE_FAILED")));
	});
	createInterface({ input: child.stdout }).on("line", (line) => options.onLine?.(line));
	await listening;
	return {
		node: node.name,
		iface,
		file: options.file,
		async stop() {
			child.kill("SIGINT");
			await child;
			return { packets };
		},
	};
}

/** Split a command line like a shell would for words and quotes, without running a shell. */
export function splitCommand(text: string): string[] {
	const words: string[] = [];
	let word = "";
	let quote: string | undefined;
	let inWord = false;
	for (const char of text) {
		if (quote) {
			if (char === quote) quote = undefined;
			else word += char;
		} else if (char === "'" || char === '"') {
			quote = char;
			inWord = true;
		} else if (/\s/.test(char)) {
			if (inWord) words.push(word);
			word = "";
			inWord = false;
		} else {
			word += char;
			inWord = true;
		}
	}
	if (quote) throw new LabStateError(`unbalanced ${quote} in: ${text}`, "USAGE");
	if (inWord) words.push(word);
	return words;
}
