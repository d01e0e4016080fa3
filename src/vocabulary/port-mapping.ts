// The port-mapping protocols a NAT can answer and a peer can ask with: UPnP-IGD (SSDP discovery and
// SOAP over HTTP), NAT-PMP (RFC 6886) and PCP (RFC 6887). The agents (agents/portmap/) use the same module.

export const portMappingProtocols = ["upnp", "nat-pmp", "pcp"] as const;
export type PortMappingProtocol = (typeof portMappingProtocols)[number];
export const portMappingProtocolOf = (text: string): PortMappingProtocol | undefined => ((portMappingProtocols as readonly string[]).includes(text) ? (text as PortMappingProtocol) : undefined);

/** The order a client asks in: PCP and NAT-PMP take one round trip, UPnP needs discovery (as Tailscale's portmapper prefers them). */
export const askingOrder: readonly PortMappingProtocol[] = ["pcp", "nat-pmp", "upnp"];

/** Where a NAT answers: NAT-PMP and PCP share UDP 5351 on the inside address; SSDP is UDP 1900 multicast; UPnP's SOAP is HTTP on this TCP port. */
export const portMappingPorts = { pmp: 5351, ssdp: 1900, http: 2869 } as const;
