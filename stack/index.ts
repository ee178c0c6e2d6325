// The stack's programmatic API, for test/run.ts and the main CLI.
export {
  ensureStack,
  installStack,
  stopStack,
  stackStatus,
  resolveEnv,
  StackError,
  SERVICES,
  type EnsureResult,
  type ServiceName,
  type ServiceStatus,
  type StackEnv,
  type StackOptions,
  type StopResult,
} from './stack.ts';
export { PrerequisiteError, installCommands } from './prerequisites.ts';
export { chooseRegistry } from './registry.ts';
