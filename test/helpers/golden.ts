// Golden files: text output compared with a reviewed copy in test/golden/ (or another path).
// UPDATE_GOLDEN=1 rewrites them; review the diff before committing.
import { existsSync, readFileSync, writeFileSync } from "node:fs";

/** Compare `actual` with the golden file `name` (in test/golden/) or at `path`. */
export function golden(t: { is(a: string, b: string, message?: string): void }, file: string | URL, actual: string): void {
	const path = typeof file === "string" ? new URL(`../golden/${file}`, import.meta.url) : file;
	if (process.env.UPDATE_GOLDEN) writeFileSync(path, actual);
	if (!existsSync(path)) return t.is(actual, `(no golden file ${path.pathname}: run with UPDATE_GOLDEN=1 and review it)`);
	t.is(actual, readFileSync(path, "utf8"), `${path.pathname} differs (UPDATE_GOLDEN=1 rewrites it; review the diff)`);
}
