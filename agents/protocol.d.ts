export declare const reachPort = 7357;
export type ReachMessage = {
    type: "ping";
    nonce: string;
} | {
    type: "pong";
    nonce: string;
    node: string;
};
export declare function encodeReach(message: ReachMessage): Buffer;
/** Anything that is not exactly a reach message is undefined (and gets dropped and counted). */
export declare function decodeReach(data: Buffer): ReachMessage | undefined;
