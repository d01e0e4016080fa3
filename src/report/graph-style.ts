// Colours, fonts and the style of each side of the lab: shared by the DOT and Mermaid pictures.
import type { GraphRegion } from "./graph-model.ts";

// Graphviz measures text with its built-in Helvetica metrics only when the name is exactly this (a list
// falls back to Times metrics, too narrow); its SVG then asks for "Helvetica,sans-Serif".
export const font = "Helvetica";
export const style = {
	public: { fill: "#eaf2fb", stroke: "#2e75b6", font: "#1f4e79" },
	private: [
		{ fill: "#fdf1e1", stroke: "#d9822b", font: "#8a4b0f" },
		{ fill: "#f9e1c3", stroke: "#b86b1b", font: "#7a410c" },
	],
	node: {
		host: { fill: "#ffffff", stroke: "#404040" },
		router: { fill: "#d6e4f0", stroke: "#2e75b6" },
		nat: { fill: "#f6c28b", stroke: "#b35900" },
		switch: { fill: "#e2efda", stroke: "#548235" },
	},
	edge: "#505050",
	impaired: "#c0392b",
} as const;

export function regionStyle(region: GraphRegion) {
	return region.id === "public" ? style.public : style.private[Math.min(region.depth, style.private.length - 1)];
}
