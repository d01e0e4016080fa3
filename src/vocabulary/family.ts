// The address family of a command or a check: IPv4 or IPv6, as the user may write it.

export type AddressFamily = 4 | 6;

/** "4", "6", "ipv4", "ipv6" → 4 or 6; anything else → undefined. */
export function addressFamilyOf(text: string): AddressFamily | undefined {
	return ({ "4": 4, "6": 6, ipv4: 4, ipv6: 6 } as Record<string, AddressFamily>)[text.toLowerCase()];
}
