// `testbed init [TEMPLATE] [-o FILE]`: a starter topology copied from the examples, with the schema
// comment pointing at this testbed's schema so editors complete and check it.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { projectPath } from "../../project.ts";
import { LabStateError, UsageError } from "../../errors.ts";
import { checkLabName, renameText } from "../../resolve/rename.ts";
import type { Io } from "../io.ts";

const topologies = projectPath("topologies");
const schema = projectPath("schema", "topology.schema.json");

export function templates(): string[] {
	return readdirSync(topologies)
		.filter((name) => name.endsWith(".yml"))
		.map((name) => name.slice(0, -4))
		.sort();
}

/**
 * `--name NAME` writes NAME.yml (unless -o) as lab NAME: its `name:`, and its `prefix:` and `netns:`
 * by the rule of `up --name` (resolve/rename.ts), so each student's copy has namespaces of its own.
 */
export async function initCommand(template: string | undefined, options: { o?: string; force?: boolean; name?: string }, io: Io): Promise<number> {
	const name = template ?? "two-nats";
	if (!templates().includes(name)) throw new UsageError(`no template "${name}"; templates: ${templates().join(", ")}`);
	if (options.name !== undefined) checkLabName(options.name);
	const target = resolve(options.o ?? `${options.name ?? name}.yml`);
	if (existsSync(target) && !options.force) throw new LabStateError(`${target} exists; use --force to overwrite it, or -o another file`, "FILE_EXISTS");
	const original = readFileSync(join(topologies, `${name}.yml`), "utf8").replace(/^# yaml-language-server: \$schema=.*$/m, `# yaml-language-server: $schema=${relative(dirname(target), schema)}`);
	writeFileSync(target, options.name === undefined ? original : renameText(original, options.name));
	io.out(`wrote ${target} (from template ${name}${options.name === undefined ? "" : `, as lab ${options.name}`}); next: testbed validate ${relative(process.cwd(), target)} · testbed plan … · sudo testbed up …`);
	return 0;
}
