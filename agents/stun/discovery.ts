// NAT behaviour discovery (RFC 5780 section 4): from what the tests observed to RFC 4787 terms.
// Pure functions, so that every combination can be checked without a network.

export type Behaviour = "endpoint-independent" | "address-dependent" | "address-and-port-dependent" | "unknown";

export interface Endpoint {
	address: string;
	port: number;
}

/** What the mapping tests saw: the mapped address of each test (undefined: no answer / not run). */
export interface MappingObservations {
	/** Test I: to the server's primary address and port. */
	testI?: Endpoint;
	/** Test II: to the alternate address, primary port (from OTHER-ADDRESS). */
	testII?: Endpoint;
	/** Test III: to the alternate address and alternate port. */
	testIII?: Endpoint;
}

/**
 * What a filtering test saw: an answer from the changed address ("answered"), nothing ("silent"),
 * an answer from an address that was not the one asked for ("wrong-source": the server ignored
 * CHANGE-REQUEST), or the test was not run.
 */
export type FilteringObservation = "answered" | "silent" | "wrong-source" | "not-run";

export interface FilteringObservations {
	/** Test I: a plain Binding to the primary address got an answer. */
	testI: boolean;
	/** Test II: CHANGE-REQUEST change-IP and change-port. */
	testII: FilteringObservation;
	/** Test III: CHANGE-REQUEST change-port only. */
	testIII: FilteringObservation;
}

export function sameEndpoint(a: Endpoint | undefined, b: Endpoint | undefined): boolean {
	return a !== undefined && b !== undefined && a.address === b.address && a.port === b.port;
}

/** RFC 5780 4.3: II == I → endpoint-independent; else III == II → address-dependent; else address-and-port-dependent. */
export function classifyMapping(observed: MappingObservations): Behaviour {
	if (!observed.testI || !observed.testII) return "unknown";
	if (sameEndpoint(observed.testI, observed.testII)) return "endpoint-independent";
	if (!observed.testIII) return "unknown";
	return sameEndpoint(observed.testII, observed.testIII) ? "address-dependent" : "address-and-port-dependent";
}

/** RFC 5780 4.4: II answered → endpoint-independent; else III answered → address-dependent; else address-and-port-dependent. */
export function classifyFiltering(observed: FilteringObservations): Behaviour {
	if (!observed.testI) return "unknown";
	if (observed.testII === "answered") return "endpoint-independent";
	if (observed.testII !== "silent") return "unknown";
	if (observed.testIII === "answered") return "address-dependent";
	return observed.testIII === "silent" ? "address-and-port-dependent" : "unknown";
}

/** No NAT when the server saw our own address and port (RFC 5780 4.3: "no NAT" when mapped == local). */
export function natDetected(mapped: Endpoint | undefined, localAddresses: string[], localPort: number): boolean | null {
	if (!mapped) return null;
	return !(localAddresses.includes(mapped.address) && mapped.port === localPort);
}

/** Port preservation: the NAT kept the local port. Null when there was no answer. */
export function portPreserved(mapped: Endpoint | undefined, localPort: number): boolean | null {
	return mapped ? mapped.port === localPort : null;
}

/** The RFC 3489 name of a mapping/filtering pair, where it has one. */
export function classicNatType(nat: boolean | null, mapping: Behaviour, filtering: Behaviour): string {
	if (nat === null) return "unknown";
	if (!nat) return filtering === "endpoint-independent" || filtering === "unknown" ? "open" : "firewall";
	if (mapping === "endpoint-independent") {
		if (filtering === "endpoint-independent") return "full-cone";
		if (filtering === "address-dependent") return "restricted-cone";
		if (filtering === "address-and-port-dependent") return "port-restricted";
	}
	if (mapping === "address-dependent" || mapping === "address-and-port-dependent") return "symmetric";
	return "unknown";
}

export interface LifetimeSample {
	/** Idle seconds between the mapping's last packet and the check. */
	idleS: number;
	/** Whether the check still reached the old mapping. */
	alive: boolean;
}

export interface LifetimeEstimate {
	/** The longest idle time the mapping survived (0 when it survived none). */
	aliveS: number;
	/** The shortest idle time it did not survive; null when it survived every one. */
	expiredS: number | null;
	/** False when the samples contradict each other (a longer idle survived where a shorter one died). */
	consistent: boolean;
}

/** Mapping lifetime from idle-then-check samples (RFC 5780 4.6): it lies in [aliveS, expiredS). */
export function estimateLifetime(samples: LifetimeSample[]): LifetimeEstimate {
	const alive = samples.filter((sample) => sample.alive).map((sample) => sample.idleS);
	const dead = samples.filter((sample) => !sample.alive).map((sample) => sample.idleS);
	const aliveS = alive.length ? Math.max(...alive) : 0;
	const expiredS = dead.length ? Math.min(...dead) : null;
	return { aliveS, expiredS, consistent: expiredS === null || aliveS < expiredS };
}

/** Idle times to try: every `stepS` up to `maxS` (at most 40 values, so that the parallel checks stay cheap). */
export function lifetimeCandidates(maxS: number, stepS: number): number[] {
	if (!(maxS > 0) || !(stepS > 0)) return [];
	const step = Math.max(stepS, maxS / 40);
	const values: number[] = [];
	for (let index = 1; index * step <= maxS + 1e-9; index++) values.push(Math.round(index * step * 1000) / 1000);
	return values;
}
