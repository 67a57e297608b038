// The runtime's public surface: what trainers, role files and the CLI import.
export { Runtime, startRuntime } from './runtime.js';
export type { ReplicaStats } from './records.js';
export { RoleGroup, inProcessRole, inProcessRoles, shardRange, type CallOptions, type CallResult, type GroupCallOptions, type GroupResult, type Payload, type RoleHandle, type Roles } from './handles.js';
export { serveRole, type Method, type Reply, type Request, type RoleContext, type RoleSetup } from './role-server.js';
export { planPlacement, parseDevices, LOCAL_NODE, type Placement, type PlanInput, type ReplicaPlan, type RoleInput } from './placement.js';
export { PROTOCOL_VERSION, RuntimeError, type ErrorCode, type ErrorValue, type Meta, type Metrics } from './protocol.js';
export { DEFAULTS as RUNTIME_DEFAULTS, type RuntimeEvent, type RuntimeOptions } from './options.js';
export { runNode, type NodeOptions } from './remote-agent.js';
export { readNodeKeys, runKeysIn, writeNodeKeys } from './curve.js';
export { wireTensor, concatRows, sliceRows, numel, bytesPerElement, type DType, type Tensors, type TypedArray, type WireTensor } from './wire.js';
