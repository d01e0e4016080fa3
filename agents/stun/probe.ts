// RFC 5780 NAT behaviour discovery against one STUN server, from one local UDP socket: mapping
// (4.3), filtering (4.4), hairpinning (4.5), port preservation, and optionally the mapping lifetime
// (4.6). The network side; the conclusions come from the pure functions in discovery.ts.
import { nodeAddresses } from "../agent-io.ts";
import { getAttribute } from "./message.ts";
import { type Answer, StunClient, type Timing, type Transaction, round } from "./client.ts";
import {
	type Behaviour,
	type Endpoint,
	type FilteringObservation,
	type LifetimeEstimate,
	type LifetimeSample,
	classicNatType,
	classifyFiltering,
	classifyMapping,
	estimateLifetime,
	lifetimeCandidates,
	natDetected,
	portPreserved,
	sameEndpoint,
} from "./discovery.ts";

export interface ProbeOptions {
	server: Endpoint;
	/** Bind the probing socket to this port (0: any), to see whether the NAT keeps it. */
	localPort?: number;
	/** How long to wait for an answer that should come. */
	timeoutMs?: number;
	/** How long to wait before concluding that an answer will not come (filtering, hairpin). */
	filterWaitMs?: number;
	intervalMs?: number;
	/** Measure the mapping lifetime, trying idle times every `timeoutStepS` up to `maxTimeoutS`. */
	timeouts?: boolean;
	maxTimeoutS?: number;
	timeoutStepS?: number;
}

export interface TestRecord {
	to: string;
	sent: number;
	elapsedMs: number;
	answered: boolean;
	from?: string;
	mapped?: string;
	rttMs?: number;
}

export interface ProbeResult {
	event: "result";
	server: string;
	localPort: number;
	localAddresses: string[];
	mappedAddress: Endpoint | null;
	otherAddress: Endpoint | null;
	natDetected: boolean | null;
	mapping: Behaviour;
	filtering: Behaviour;
	natType: string;
	hairpin: boolean | null;
	portPreservation: boolean | null;
	mappingLifetimeS?: number;
	mappingLifetime?: (LifetimeEstimate & { samples: LifetimeSample[] }) | { skipped: string };
	timings: Record<string, number>;
	tests: Record<string, TestRecord | { skipped: string }>;
	error?: string;
}

const text = (endpoint: Endpoint) => `${endpoint.address}:${endpoint.port}`;

function mappedOf(answer: Answer | undefined): Endpoint | undefined {
	if (!answer) return undefined;
	const mapped = getAttribute(answer.message, "XOR-MAPPED-ADDRESS") ?? getAttribute(answer.message, "MAPPED-ADDRESS");
	return mapped ? { address: mapped.address, port: mapped.port } : undefined;
}

function record(transaction: Transaction): TestRecord {
	const mapped = mappedOf(transaction.answer);
	return {
		to: text(transaction.to),
		sent: transaction.sent,
		elapsedMs: transaction.elapsedMs,
		answered: transaction.answer !== undefined && transaction.answer.message.class === "success",
		...(transaction.answer ? { from: text(transaction.answer.from), rttMs: transaction.answer.rttMs } : {}),
		...(mapped ? { mapped: text(mapped) } : {}),
	};
}

/** A filtering test: no answer → "silent"; an answer from anywhere but `expected` → "wrong-source". */
function filteringObservation(transaction: Transaction, expected: Endpoint): FilteringObservation {
	if (!transaction.answer || transaction.answer.message.class !== "success") return "silent";
	return sameEndpoint(transaction.answer.from, expected) ? "answered" : "wrong-source";
}


/** A result that knows nothing yet: the probe fills it in as its tests answer. */
export function unknownResult(server: Endpoint, localPort: number, localAddresses: string[], timings: ProbeResult["timings"], tests: ProbeResult["tests"]): ProbeResult {
	return {
		event: "result",
		server: text(server),
		localPort,
		localAddresses,
		mappedAddress: null,
		otherAddress: null,
		natDetected: null,
		mapping: "unknown",
		filtering: "unknown",
		natType: "unknown",
		hairpin: null,
		portPreservation: null,
		timings,
		tests,
	};
}

export async function probeNat(options: ProbeOptions): Promise<ProbeResult> {
	const started = performance.now();
	const answerTiming: Timing = { waitMs: options.timeoutMs ?? 500, intervalMs: options.intervalMs ?? 100 };
	const silenceTiming: Timing = { waitMs: options.filterWaitMs ?? 400, intervalMs: options.intervalMs ?? 100 };
	const timings: Record<string, number> = {};
	const tests: ProbeResult["tests"] = {};
	const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
		const at = performance.now();
		try {
			return await work();
		} finally {
			timings[`${name}Ms`] = round(performance.now() - at);
		}
	};

	// Over IPv6 (the server's address says which) the same tests measure a firewall: nothing is translated.
	const family = options.server.address.includes(":") ? 6 : 4;
	const client = await StunClient.open(options.localPort ?? 0, family);
	const localPort = client.localPort;
	const localAddresses = nodeAddresses(family);
	const result = unknownResult(options.server, localPort, localAddresses, timings, tests);
	try {
		// Test I (mapping and filtering): a plain Binding to the primary address and port.
		const first = await timed("testI", () => client.request(options.server, {}, answerTiming));
		tests.testI = record(first);
		const mapped = mappedOf(first.answer);
		if (!first.answer || !mapped) {
			result.error = `no answer from ${text(options.server)}: UDP blocked or no server`;
			return result;
		}
		const otherAttribute = getAttribute(first.answer.message, "OTHER-ADDRESS");
		const other = otherAttribute ? { address: otherAttribute.address, port: otherAttribute.port } : undefined;
		result.mappedAddress = mapped;
		result.otherAddress = other ?? null;
		result.natDetected = natDetected(mapped, localAddresses, localPort);
		result.portPreservation = portPreserved(mapped, localPort);

		// Mapping tests II and III: the alternate address with the primary port, then with the alternate port.
		let testII: Endpoint | undefined;
		let testIII: Endpoint | undefined;
		if (other) {
			const alternate = await timed("mappingII", () => client.request({ address: other.address, port: options.server.port }, {}, answerTiming));
			tests.mappingII = record(alternate);
			testII = mappedOf(alternate.answer);
			if (testII && !sameEndpoint(mapped, testII)) {
				const both = await timed("mappingIII", () => client.request(other, {}, answerTiming));
				tests.mappingIII = record(both);
				testIII = mappedOf(both.answer);
			} else tests.mappingIII = { skipped: testII ? "test II decided" : "test II had no answer" };
		} else tests.mappingII = tests.mappingIII = { skipped: "the server sent no OTHER-ADDRESS (no RFC 5780 support)" };
		result.mapping = classifyMapping({ testI: mapped, testII, testIII });

		// Filtering on a fresh socket (a mapping of its own) that has contacted only the primary address
		// and port: the mapping tests above opened the filter of their own mapping for the alternate
		// address, and an inbound session from there would also pin that mapping's port.
		let filteringII: FilteringObservation = "not-run";
		let filteringIII: FilteringObservation = "not-run";
		if (other) {
			const filterClient = await StunClient.open(0, family);
			try {
				const opened = await timed("filteringI", () => filterClient.request(options.server, {}, answerTiming));
				tests.filteringI = record(opened);
				if (opened.answer) {
					const changeBoth = await timed("filteringII", () => filterClient.request(options.server, { changeIp: true, changePort: true }, silenceTiming));
					tests.filteringII = record(changeBoth);
					filteringII = filteringObservation(changeBoth, other);
					if (filteringII === "silent") {
						const changePort = await timed("filteringIII", () => filterClient.request(options.server, { changePort: true }, silenceTiming));
						tests.filteringIII = record(changePort);
						filteringIII = filteringObservation(changePort, { address: options.server.address, port: other.port });
					} else tests.filteringIII = { skipped: "test II decided" };
				} else tests.filteringII = tests.filteringIII = { skipped: "no answer to the filtering socket's first request" };
			} finally {
				await filterClient.close();
			}
		} else tests.filteringII = tests.filteringIII = { skipped: "the server sent no OTHER-ADDRESS (no RFC 5780 support)" };
		result.filtering = classifyFiltering({ testI: true, testII: filteringII, testIII: filteringIII });
		result.natType = classicNatType(result.natDetected, result.mapping, result.filtering);

		// Hairpinning: from a second local socket to our own mapped address; does the first one get it?
		if (result.natDetected) {
			const second = await StunClient.open(0, family);
			try {
				const hairpin = await timed("hairpin", () => second.reaches(mapped, client, silenceTiming));
				tests.hairpin = { to: text(mapped), sent: hairpin.sent, elapsedMs: hairpin.elapsedMs, answered: hairpin.arrived };
				result.hairpin = hairpin.arrived;
			} finally {
				await second.close();
			}
		} else tests.hairpin = { skipped: "no NAT" };

		if (options.timeouts) {
			if (!result.natDetected) result.mappingLifetime = { skipped: "no NAT" };
			else {
				const lifetime = await timed("mappingLifetime", () => measureLifetime(options, answerTiming, silenceTiming));
				result.mappingLifetime = lifetime;
				if ("samples" in lifetime && lifetime.samples.length > 0) result.mappingLifetimeS = lifetime.aliveS;
			}
		}
		return result;
	} finally {
		await client.close();
		timings.totalMs = round(performance.now() - started);
	}
}

/**
 * RFC 5780 4.6, all idle times at once: one fresh socket (mapping) per candidate idle time T; each
 * binds its mapping with a Binding to the server, stays silent for T, and then a separate socket
 * asks the server (RESPONSE-PORT) to answer to that mapping's public port. The answer arrives only
 * while the mapping lives. The checks never refresh the mappings they test.
 */
async function measureLifetime(options: ProbeOptions, answerTiming: Timing, silenceTiming: Timing): Promise<(LifetimeEstimate & { samples: LifetimeSample[] }) | { skipped: string }> {
	const candidates = lifetimeCandidates(options.maxTimeoutS ?? 10, options.timeoutStepS ?? 1);
	const family = options.server.address.includes(":") ? 6 : 4;
	const asker = await StunClient.open(0, family);
	const mappings = await Promise.all(candidates.map(() => StunClient.open(0, family)));
	try {
		const bound = await Promise.all(mappings.map((mapping) => mapping.request(options.server, {}, answerTiming)));
		if (bound.some((transaction) => !mappedOf(transaction.answer))) return { skipped: "the server did not answer every mapping" };
		let misdirected = false;
		const samples = await Promise.all(
			candidates.map(async (idleS, index): Promise<LifetimeSample | undefined> => {
				const mapping = mappings[index];
				await new Promise((resolve) => setTimeout(resolve, Math.max(0, mapping.lastActivity + idleS * 1000 - performance.now())));
				const actualIdleS = (performance.now() - mapping.lastActivity) / 1000;
				const check = await asker.request(options.server, { responsePort: mappedOf(bound[index].answer)!.port, answerOn: mapping }, silenceTiming);
				if (check.misdirected) misdirected = true;
				return { idleS: Math.round(actualIdleS * 100) / 100, alive: check.answer !== undefined };
			}),
		);
		if (misdirected) return { skipped: "the server answered the asking socket: it does not support RESPONSE-PORT" };
		const valid = samples.filter((sample): sample is LifetimeSample => sample !== undefined);
		return { ...estimateLifetime(valid), samples: valid };
	} finally {
		await Promise.all([asker, ...mappings].map((socket) => socket.close()));
	}
}
