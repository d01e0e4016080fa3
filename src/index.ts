// The library: everything the CLI does, as functions a test suite can call.
export { checkFile, checkSource, loadLab, loadLabText } from "./load.ts";
export { planLab } from "./plan/plan.ts";
export { renderPlanText, renderBatchText } from "./render/plan-text.ts";
export { renderPlan } from "./render/batch.ts";
export { upLab, type UpOptions, type UpResult } from "./apply/up.ts";
export { downLab, downAll, type DownResult } from "./apply/down.ts";
export { labStatuses, type LabStatus } from "./apply/status.ts";
export { detectFeatures, type FeatureReport } from "./apply/features.ts";
export { doctor } from "./apply/doctor.ts";
export { reachMatrix, type ReachMatrix, type ReachCell } from "./agents/reach.ts";
export { probeLab, composeBehaviour, type ProbeReport, type NatVerdict } from "./agents/probe.ts";
export { UdpTool } from "./agents/udp-tool.ts";
export { formatProblem, type Problem, type ProblemCode } from "./validate/problem.ts";
export * from "./errors.ts";
export type { Lab, LabNode, LabInterface, LabLink, LabRoute, LabNat } from "./resolve/lab.ts";
export type { Plan, Operation, HostFeatures } from "./plan/operations.ts";
