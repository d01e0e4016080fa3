// What a topology file may say: the keys of each part (the JSON Schema is checked against these),
// the keys of each step kind, the names a program and an environment variable may have, and defaults.

/** The keys each part of a topology file may have (the JSON Schema is checked against these). */
export const topologyKeys = {
	top: ["$schema", "name", "prefix", "description", "nodes", "links", "expect", "steps"],
	node: ["kind", "netns", "interfaces", "routes", "default-route", "nat", "ipv6", "description", "programs", "private", "files", "limits"],
	ipv6: ["filtering", "nat", "prefix"],
	file: ["text", "from", "mode"],
	limits: ["cpu", "memory", "pids", "disk"],
	program: ["run", "env", "cwd", "ready", "after"],
	ready: ["udp", "tcp", "output", "file", "within"],
	iface: ["name", "type", "address", "addresses"],
	route: ["to", "via", "dev"],
	nat: ["type", "mapping", "filtering", "hairpin", "port-preservation", "udp-timeout", "tcp-timeout", "unsolicited-tcp", "outside", "port-mapping"],
	portMapping: ["protocols", "lease", "ports", "secure"],
	lease: ["min", "max"],
	link: ["endpoints", "subnet", "subnet6", "addresses", "impair", "mtu", "state", "description"],
	impair: ["delay", "jitter", "loss", "loss-burst", "duplicate", "reorder", "corrupt", "rate", "limit", "from"],
	punchCheck: ["punch", "proto", "family", "result", "runs", "max-time", "port-mapping"],
	reachCheck: ["reach", "proto", "result"],
	probeCheck: ["probe", "mapping", "filtering", "hairpin", "port-preservation"],
	runCheck: ["run", "command", "env", "exit", "output", "within"],
	pairCheck: ["pair", "listen", "dial", "env", "result", "within"],
	matrixCheck: ["matrix"],
	matrix: ["listen", "dial", "env", "pairs", "result", "except", "within"],
	matrixException: ["pair", "result"],
} as const;


/** Program names: like node names. */
export const programNamePattern = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
/** Environment variable names a shell can use. */
export const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** How long a check of the user's program may take by default, and a program to become ready. */
export const defaultCheckWithinMs = 30_000;
export const defaultReadyWithinMs = 10_000;

/** The keys of each step kind besides its own (and `at`). */
export const stepKeys: Record<string, readonly string[]> = {
	wait: [],
	connect: ["result", "within", "keepalive", "loss-after"],
	expect: ["between", "within", "result"],
	"link-down": [],
	"link-up": [],
	flap: ["period", "down-for", "count"],
	impair: ["from", ...topologyKeys.impair.filter((key) => key !== "from")],
	"nat-reboot": ["outage"],
	rebind: ["host"],
	expire: ["host"],
	move: ["via"],
	restart: [],
};
