// The name rules of labs, nodes, interfaces and namespaces: one small module, so that code which
// only checks a name (state paths, the resolver) does not load the topology reader and YAML.

export const labNamePattern = /^[a-z][a-z0-9-]{0,22}[a-z0-9]$|^[a-z]$/;
/** What `labNamePattern` allows, in words: the fix for a bad `name:` or `--name`. */
export const labNameRule = "use 1-24 characters: a-z, 0-9 and -, starting with a letter, not ending with -";
export const nodeNamePattern = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
export const interfaceNamePattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
export const netnsNamePattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/** Longest namespace name we create: keeps `ip netns`, prompts and tables readable. */
export const maxNamespaceLength = 32;
