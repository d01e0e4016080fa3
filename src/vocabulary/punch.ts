// The words of hole punching that every stage shares: what a punch can end in, which paths are
// better, and where the rendezvous listens. The agents (agents/punch/) use the same module.

/** How a punch between two peers ends: host candidates on one LAN, through a shared NAT, through the NATs, the rendezvous' relay, or nothing. */
export const punchOutcomes = ["lan", "hairpin", "direct", "relayed", "failed"] as const;
export type PunchOutcome = (typeof punchOutcomes)[number];

/** A path that carries traffic: every outcome but failure. */
export type PathKind = Exclude<PunchOutcome, "failed">;

/** Lower is better: a LAN path beats one through NATs, which beats the relay. */
export const pathRank: Record<PunchOutcome, number> = { lan: 0, hairpin: 1, direct: 1, relayed: 2, failed: 3 };

/** The transports a punch can use: UDP datagrams, or TCP simultaneous open. */
export const punchProtos = ["udp", "tcp"] as const;
export type PunchProto = (typeof punchProtos)[number];
export const punchProtoOf = (text: string): PunchProto | undefined => (punchProtos as readonly string[]).includes(text) ? (text as PunchProto) : undefined;

/**
 * The port the rendezvous agent listens on (UDP, and TCP for TCP punching). Not 7000: tcpdump decodes UDP 7000–7009 as AFS rx
 * and prints the punch protocol as `rx` packets in a student's capture; 7777 prints as plain UDP.
 */
export const rendezvousPort = 7777;
