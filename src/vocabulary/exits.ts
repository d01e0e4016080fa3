// How a program ended, in the words every report uses: "timed out", "exit 3", "killed by SIGTERM".

export function describeExit(exit: { timedOut: boolean; exitCode: number | null; signal: string | null }): string {
	return exit.timedOut ? "timed out" : exit.exitCode !== null ? `exit ${exit.exitCode}` : `killed by ${exit.signal}`;
}
