// Checks that run the user's programs: one program on one node (`run`), a listen/dial pair (`pair`),
// and the same pair over many pairs of peers (`matrix`), reported beside what theory says the two
// NATs allow. The dialer's exit status decides; the last JSON line it prints is kept.
import type { NodeProcess, ProgramExit } from "../apply/node-process.ts";
import { startInNode } from "../apply/programs.ts";
import { firstAddress, type UserCheck, type UserCommand } from "../resolve/commands.ts";
import type { Lab } from "../resolve/lab.ts";
import type { CheckResult } from "./run.ts";
import { expectedPunch, labPeers } from "./theory.ts";
import { describeExit } from "../vocabulary/exits.ts";

/** One side of a check as it ran: what, where, how it ended, its last output. */
export interface ProgramRun {
	role: "run" | "listen" | "dial";
	node: string;
	command: string;
	exitCode: number | null;
	signal: string | null;
	durationMs: number;
	timedOut: boolean;
	/** Its last lines, `stdout: …` / `stderr: …`. */
	tail: string[];
}

/** Longest a listener is given to bind its socket before the dialer starts anyway. */
const listenerSettleMs = 5000;
/** How many pairs of a matrix run at once (never two on one node). */
const matrixParallel = 4;

function ran(role: ProgramRun["role"], command: UserCommand, program: NodeProcess, exit: ProgramExit): ProgramRun {
	return { role, node: program.node, command: command.text, exitCode: exit.exitCode, signal: exit.signal, durationMs: exit.durationMs, timedOut: exit.timedOut, tail: program.tail(15) };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function runCheck(lab: Lab, check: Extract<UserCheck, { kind: "run" }>): Promise<CheckResult> {
	const program = await startInNode(lab, check.node, check.command);
	const exit = await program.exit(check.withinMs);
	const output = [...program.output().stdout, ...program.output().stderr].join("\n");
	const matched = check.output === undefined || new RegExp(check.output, "m").test(output);
	const ok = !exit.timedOut && exit.exitCode === check.exit && matched;
	const why = ok ? undefined : exit.timedOut ? `not done within ${seconds(check.withinMs)}` : exit.exitCode !== check.exit ? `${describeExit(exit)}, expected exit ${check.exit}` : `its output has no match for /${check.output}/`;
	return {
		name: `run ${check.node}: ${check.command.text}`,
		kind: "run",
		expected: `exit ${check.exit}${check.output !== undefined ? ` and output /${check.output}/` : ""}`,
		measured: `${describeExit(exit)}${check.output !== undefined ? (matched ? ", output matched" : ", output did not match") : ""} in ${seconds(exit.durationMs)}`,
		ok,
		line: check.pos.line || undefined,
		programs: [ran("run", check.command, program, exit)],
		...(why ? { why } : {}),
	};
}

/** One listen/dial run: the listener starts first, the dialer once the listener has bound a socket. */
export async function runPair(lab: Lab, dialer: string, listener: string, listen: UserCommand, dial: UserCommand, withinMs: number): Promise<{ dial: ProgramRun; listen: ProgramRun; result?: Record<string, unknown>; passed: boolean }> {
	const address = (name: string) => firstAddress(lab.nodes.find((node) => node.name === name)!) ?? "";
	const listening = await startInNode(lab, listener, listen, { TESTBED_ROLE: "listen", TESTBED_PEER: dialer, TESTBED_PEER_ADDR: address(dialer) });
	try {
		for (let waited = 0; waited < listenerSettleMs && listening.running && !listening.listening(); waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
		const dialing = await startInNode(lab, dialer, dial, { TESTBED_ROLE: "dial", TESTBED_PEER: listener, TESTBED_PEER_ADDR: address(listener) });
		const dialed = await dialing.exit(withinMs);
		const listened = await listening.kill("SIGTERM", 1000);
		const result = dialing.lastJson();
		return { dial: ran("dial", dial, dialing, dialed), listen: ran("listen", listen, listening, listened), ...(result ? { result } : {}), passed: !dialed.timedOut && dialed.exitCode === 0 };
	} finally {
		await listening.kill("SIGKILL");
	}
}

function pairResult(lab: Lab, name: string, kind: "pair" | "matrix", dialer: string, listener: string, expected: "pass" | "fail", outcome: Awaited<ReturnType<typeof runPair>>, line: number | undefined): CheckResult {
	const measured = outcome.passed ? "pass" : "fail";
	const ok = measured === expected;
	const dial = outcome.dial;
	const theory = expectedPunch(lab, dialer, listener);
	return {
		name,
		kind,
		expected,
		measured: `${measured} (dialer ${describeExit(dial)}, ${seconds(dial.durationMs)})`,
		ok,
		line,
		pair: { dialer, listener },
		theory,
		programs: [outcome.listen, outcome.dial],
		...(outcome.result ? { result: outcome.result } : {}),
		...(ok ? {} : { why: `expected ${expected}, the dialer ${dial.timedOut ? "timed out" : `ended with ${dial.exitCode !== null ? `exit ${dial.exitCode}` : dial.signal}`}; theory for the two NATs says ${theory}` }),
	};
}

/** The ordered pairs (dialer, listener) a matrix runs, each with what it expects. */
export function matrixPairs(lab: Lab, check: Extract<UserCheck, { kind: "matrix" }>): { dialer: string; listener: string; expected: "pass" | "fail" }[] {
	const peers = labPeers(lab);
	const pairs = check.pairs === "all" ? peers.flatMap((a) => peers.filter((b) => b !== a).map((b): [string, string] => [a, b])) : check.pairs.flatMap(([a, b]): [string, string][] => [[a, b], [b, a]]);
	const seen = new Set<string>();
	return pairs
		.filter(([a, b]) => !seen.has(`${a}\0${b}`) && seen.add(`${a}\0${b}`))
		.map(([dialer, listener]) => ({
			dialer,
			listener,
			expected: check.except.find((exception) => (exception.pair[0] === dialer && exception.pair[1] === listener) || (exception.pair[0] === listener && exception.pair[1] === dialer))?.result ?? check.result,
		}));
}

/** Run jobs that each hold two nodes, several at once but never two on one node, in list order where possible. */
async function onFreeNodes<T extends { dialer: string; listener: string }, R>(items: T[], limit: number, job: (item: T) => Promise<R>): Promise<R[]> {
	const results: R[] = new Array(items.length);
	const busy = new Set<string>();
	const waiting = items.map((item, index) => ({ item, index }));
	await new Promise<void>((resolve, reject) => {
		let running = 0;
		const next = () => {
			if (waiting.length === 0 && running === 0) return resolve();
			for (let i = 0; i < waiting.length && running < limit; ) {
				const { item, index } = waiting[i];
				if (busy.has(item.dialer) || busy.has(item.listener)) {
					i++;
					continue;
				}
				waiting.splice(i, 1);
				busy.add(item.dialer).add(item.listener);
				running++;
				job(item).then(
					(result) => {
						results[index] = result;
						busy.delete(item.dialer);
						busy.delete(item.listener);
						running--;
						next();
					},
					reject,
				);
			}
		};
		next();
	});
	return results;
}

/** Run the user's checks, in order; `onCheck` hears each result as it comes. */
export async function runUserChecks(lab: Lab, checks: UserCheck[], onCheck: (result: CheckResult, index: number) => void): Promise<void> {
	for (const [index, check] of checks.entries()) {
		if (check.kind === "run") onCheck(await runCheck(lab, check), index);
		else if (check.kind === "pair") {
			const outcome = await runPair(lab, check.dialer, check.listener, check.listen, check.dial, check.withinMs);
			onCheck(pairResult(lab, `pair ${check.dialer} → ${check.listener}`, "pair", check.dialer, check.listener, check.result, outcome, check.pos.line || undefined), index);
		} else {
			const pairs = matrixPairs(lab, check);
			const outcomes = await onFreeNodes(pairs, matrixParallel, (pair) => runPair(lab, pair.dialer, pair.listener, check.listen, check.dial, check.withinMs));
			pairs.forEach((pair, k) => onCheck(pairResult(lab, `matrix ${pair.dialer} → ${pair.listener}`, "matrix", pair.dialer, pair.listener, pair.expected, outcomes[k], check.pos.line || undefined), index));
		}
	}
}
