export { runSimulatorCommand, SIM_USAGE, type SimulatorCommandIo } from './cli.js';
export {
  parseSimulatorOptions,
  type SimulatorOptions,
  SimulatorOptionsError,
  type SimulatorOptionsInput,
  simulatorOptionsSchema,
} from './options.js';
export { type ControlServer, type ControlServerOptions, startControlServer } from './server-control.js';
export {
  type BoundSessionInfo,
  CarrierSimulator,
  type MoInput,
  type SubmitRecord,
} from './simulator.js';
export type { SimulatorStats } from './stats.js';
export type { UdhInfo } from './types.js';
