// The simulator for tests and tools: `const sim = await startSimulator({ port: 0 })`.
export {
  startSimulator,
  DEFAULT_SIM_PORT,
  DEFAULT_SIM_TOKEN,
  type Simulator,
  type SimulatorOptions,
  type SimStats,
  type Expected,
} from './server.ts';
export { DEFAULT_SCALE } from './modules.ts';
export {
  SimData,
  DEFAULT_GROWTH,
  DEFAULT_START_TIME,
  type SimScale,
  type SimGrowth,
  type EndlessMode,
  type ExpectedList,
  type FileEntry,
  type AuditFilter,
  type RunFilter,
} from './data.ts';
export { NO_FAULTS, type FaultOptions, type FaultKind } from './faults.ts';
