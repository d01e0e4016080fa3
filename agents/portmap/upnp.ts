// UPnP-IGD, the client's side, as text: the SSDP M-SEARCH for an Internet gateway and its answer
// (where the gateway's description is), the root description (which service takes the port-mapping
// actions, at which control URL), and the SOAP actions AddPortMapping, DeletePortMapping and
// GetExternalIPAddress with their answers and faults. Pure: text in, text out; every parser is
// size-capped, never throws, and accepts only URLs on the gateway itself (a hostile device cannot
// send us elsewhere).

export const ssdpAddress = "239.255.255.250";
export const ssdpPort = 1900;
export const igdSearchTarget = "urn:schemas-upnp-org:device:InternetGatewayDevice:1";
/** SSDP answers larger than this are not read. */
export const maxSsdpMessage = 2048;
/** A root description larger than this is refused. */
export const maxDescription = 64 * 1024;
/** A SOAP answer larger than this is refused. */
export const maxSoapResponse = 16 * 1024;

/** The services that take port-mapping actions, best first (IGDv2's WANIPConnection:2 also understands v1 actions). */
export const connectionServices = ["urn:schemas-upnp-org:service:WANIPConnection:2", "urn:schemas-upnp-org:service:WANIPConnection:1", "urn:schemas-upnp-org:service:WANPPPConnection:1"] as const;

/** UPnP error codes of the WAN*Connection services (UPnP-gw-WANIPConnection, UDA). */
export const upnpErrorNames: Record<number, string> = {
	401: "Invalid Action",
	402: "Invalid Args",
	501: "Action Failed",
	606: "Action not authorized",
	714: "NoSuchEntryInArray",
	715: "WildCardNotPermittedInSrcIP",
	716: "WildCardNotPermittedInExtPort",
	718: "ConflictInMappingEntry",
	724: "SamePortValuesRequired",
	725: "OnlyPermanentLeasesSupported",
	726: "RemoteHostOnlySupportsWildcard",
	727: "ExternalPortOnlySupportsWildcard",
	728: "NoPortMapsAvailable",
	729: "ConflictWithOtherMechanisms",
	732: "WildCardNotPermittedInIntPort",
};

/** The M-SEARCH datagram (MX 1: the gateway answers within a second). */
export function mSearch(target = igdSearchTarget, mx = 1): Buffer {
	return Buffer.from(`M-SEARCH * HTTP/1.1\r\nHOST: ${ssdpAddress}:${ssdpPort}\r\nMAN: "ssdp:discover"\r\nMX: ${mx}\r\nST: ${target}\r\n\r\n`, "latin1");
}

export type SsdpAnswer = { ok: true; location: string; st: string; server?: string } | { ok: false; reason: string };

const searchTargets = [/^urn:schemas-upnp-org:device:InternetGatewayDevice:[12]$/, /^urn:schemas-upnp-org:service:WAN(IP|PPP)Connection:[12]$/];

/**
 * An answer to our M-SEARCH, from `gateway`: a 200 with an ST of an Internet gateway and a LOCATION
 * on the gateway itself (http, any port).
 */
export function parseSsdpAnswer(data: Uint8Array, gateway: string): SsdpAnswer {
	try {
		if (data.length === 0) return { ok: false, reason: "empty" };
		if (data.length > maxSsdpMessage) return { ok: false, reason: `oversized (${data.length} bytes)` };
		const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("latin1");
		if (/[^\x20-\x7e\r\n\t]/.test(text)) return { ok: false, reason: "not text" };
		const end = text.indexOf("\r\n\r\n");
		if (end < 0) return { ok: false, reason: "truncated (no end of headers)" };
		const [status, ...lines] = text.slice(0, end).split("\r\n");
		if (!/^HTTP\/1\.[01] 200( .*)?$/i.test(status)) return { ok: false, reason: `status line ${JSON.stringify(status.slice(0, 40))}` };
		if (lines.length > 32) return { ok: false, reason: "too many headers" };
		const headers = new Map<string, string>();
		for (const line of lines) {
			const colon = line.indexOf(":");
			if (colon <= 0) return { ok: false, reason: `bad header line ${JSON.stringify(line.slice(0, 40))}` };
			const name = line.slice(0, colon).trim().toLowerCase();
			if (headers.has(name)) return { ok: false, reason: `header ${name} twice` };
			headers.set(name, line.slice(colon + 1).trim());
		}
		const st = headers.get("st");
		if (!st || !searchTargets.some((pattern) => pattern.test(st))) return { ok: false, reason: `not an Internet gateway (ST ${JSON.stringify((st ?? "").slice(0, 60))})` };
		const location = onGateway(headers.get("location") ?? "", undefined, gateway);
		if (!location.ok) return { ok: false, reason: `LOCATION: ${location.reason}` };
		const server = headers.get("server");
		return { ok: true, location: location.url, st, ...(server ? { server: server.slice(0, 120) } : {}) };
	} catch {
		return { ok: false, reason: "internal" };
	}
}

/** `text` (absolute, or relative to `base`) as an http URL on `gateway`; anything else is a reason. */
export function onGateway(text: string, base: string | undefined, gateway: string): { ok: true; url: string } | { ok: false; reason: string } {
	if (text.length === 0) return { ok: false, reason: "missing" };
	if (text.length > 300) return { ok: false, reason: "too long" };
	let url: URL;
	try {
		url = base === undefined ? new URL(text) : new URL(text, base);
	} catch {
		return { ok: false, reason: `not a URL: ${JSON.stringify(text.slice(0, 60))}` };
	}
	if (url.protocol !== "http:") return { ok: false, reason: `${url.protocol} is not http:` };
	if (url.username || url.password) return { ok: false, reason: "carries credentials" };
	if (url.hostname !== gateway) return { ok: false, reason: `on ${url.hostname.slice(0, 60)}, not on the gateway ${gateway}` };
	return { ok: true, url: url.href };
}

const entities: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const unescapeXml = (text: string) => text.replace(/&(amp|lt|gt|quot|apos);/g, (_, name: string) => entities[name]);
export const escapeXml = (text: string): string => text.replace(/[&<>"']/g, (char) => `&${Object.entries(entities).find(([, value]) => value === char)![0]};`);

/** The text of the first <name>…</name> (any namespace prefix) in `xml`, unescaped and trimmed; undefined when absent. */
function element(xml: string, name: string): string | undefined {
	const match = new RegExp(`<(?:[A-Za-z_][\\w.-]{0,30}:)?${name}(?:\\s[^<>]{0,200})?>([^<]{0,512})</(?:[A-Za-z_][\\w.-]{0,30}:)?${name}\\s*>`).exec(xml);
	return match ? unescapeXml(match[1]).trim() : undefined;
}

export type Description = { ok: true; serviceType: string; controlUrl: string } | { ok: false; reason: string };

/** The root description: the best port-mapping service and its control URL on the gateway. */
export function parseDescription(xml: string, location: string, gateway: string): Description {
	try {
		if (xml.length > maxDescription) return { ok: false, reason: `oversized (${xml.length} characters)` };
		const base = element(xml, "URLBase") || location;
		const services: { type: string; control: string }[] = [];
		// <service>…</service> blocks, found with indexOf (linear: a regex would rescan hostile input).
		for (let at = xml.indexOf("<service>"), count = 0; at >= 0 && count < 64; count++) {
			const end = xml.indexOf("</service>", at);
			if (end < 0) break;
			const block = xml.slice(at + "<service>".length, end);
			const inner = block.lastIndexOf("<service>"); // an unclosed <service> before this one
			const body = inner >= 0 ? block.slice(inner + "<service>".length) : block;
			const type = element(body, "serviceType");
			const control = element(body, "controlURL");
			if (type && control !== undefined) services.push({ type, control });
			at = xml.indexOf("<service>", end);
		}
		if (services.length === 0) return { ok: false, reason: "no services in the description" };
		for (const wanted of connectionServices) {
			const service = services.find((candidate) => candidate.type === wanted);
			if (!service) continue;
			const url = onGateway(service.control, base, gateway);
			if (!url.ok) return { ok: false, reason: `${wanted.split(":")[3]} control URL: ${url.reason}` };
			return { ok: true, serviceType: wanted, controlUrl: url.url };
		}
		return { ok: false, reason: "no WANIPConnection or WANPPPConnection service" };
	} catch {
		return { ok: false, reason: "internal" };
	}
}

export type SoapAction = "AddPortMapping" | "DeletePortMapping" | "GetExternalIPAddress";

/** The SOAPAction header's value. */
export const soapActionHeader = (serviceType: string, action: SoapAction): string => `"${serviceType}#${action}"`;

/** A SOAP request body; arguments in the order the service defines them. */
export function soapBody(serviceType: string, action: SoapAction, args: [string, string | number][]): string {
	const inner = args.map(([name, value]) => `<${name}>${escapeXml(String(value))}</${name}>`).join("");
	return `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:${action} xmlns:u="${escapeXml(serviceType)}">${inner}</u:${action}></s:Body></s:Envelope>\r\n`;
}

/** AddPortMapping's arguments (IGDv1 order); any remote host, enabled. */
export function addPortMappingArgs(options: { externalPort: number; protocol: "udp" | "tcp"; internalPort: number; internalClient: string; description: string; leaseS: number }): [string, string | number][] {
	return [
		["NewRemoteHost", ""],
		["NewExternalPort", options.externalPort],
		["NewProtocol", options.protocol.toUpperCase()],
		["NewInternalPort", options.internalPort],
		["NewInternalClient", options.internalClient],
		["NewEnabled", 1],
		["NewPortMappingDescription", options.description],
		["NewLeaseDuration", options.leaseS],
	];
}

export function deletePortMappingArgs(options: { externalPort: number; protocol: "udp" | "tcp" }): [string, string | number][] {
	return [
		["NewRemoteHost", ""],
		["NewExternalPort", options.externalPort],
		["NewProtocol", options.protocol.toUpperCase()],
	];
}

export type SoapResult = { ok: true; values: Record<string, string> } | { ok: false; code?: number; reason: string };

/**
 * The answer to a SOAP action: a 200 whose body has <ActionResponse> (its New* arguments as
 * values), or a fault (its UPnP error code and description). Never throws.
 */
export function parseSoapResponse(status: number, body: string, action: SoapAction): SoapResult {
	try {
		if (body.length > maxSoapResponse) return { ok: false, reason: `oversized answer (${body.length} characters)` };
		if (status === 200) {
			const response = new RegExp(`<(?:[A-Za-z_][\\w.-]{0,30}:)?${action}Response(?:\\s[^<>]{0,300})?(?:/>|>([\\s\\S]*?)</(?:[A-Za-z_][\\w.-]{0,30}:)?${action}Response\\s*>)`).exec(body);
			if (!response) return { ok: false, reason: `HTTP 200 without ${action}Response` };
			const values: Record<string, string> = {};
			const args = /<(New[A-Za-z]{1,40})>([^<]{0,256})<\/\1\s*>/g;
			for (let match = args.exec(response[1] ?? ""), count = 0; match && count < 16; match = args.exec(response[1] ?? ""), count++) values[match[1]] = unescapeXml(match[2]).trim();
			return { ok: true, values };
		}
		const code = Number(element(body, "errorCode"));
		const description = (element(body, "errorDescription") ?? "").replace(/[^\x20-\x7e]/g, "?").slice(0, 120);
		if (Number.isInteger(code) && code > 0) return { ok: false, code, reason: `UPnP error ${code} ${description || upnpErrorNames[code] || ""}`.trim() };
		return { ok: false, reason: `HTTP ${status}` };
	} catch {
		return { ok: false, reason: "internal" };
	}
}
