import { redact } from '../log/redact.js';
import { ServiceError } from '../report/errors.js';

/**
 * Decoding the commands service's successful answers (AWS JSON 1.1) against the shapes of its API
 * model, as an SDK's deserializer would: a member of the wrong JSON type is a SerializationException
 * naming the member, rather than a TypeError later in the poller or the command runner (`null` as the
 * whole answer, `{"HostCommand": "x"}`, a Format that is a number...). Unknown members are kept, and
 * enum values the model does not list pass as text, as SDKs do for forward compatibility.
 */

type Shape =
  | { kind: 'string' }
  | { kind: 'long' }
  | { kind: 'structure'; members: Record<string, Shape> };

const string: Shape = { kind: 'string' };
const long: Shape = { kind: 'long' };
const structure = (members: Record<string, Shape>): Shape => ({ kind: 'structure', members });

const ENVELOPE = structure({ Format: string, Payload: string });
const COMMAND_STATUS_OUTPUT = structure({ CommandStatus: string });

/** Output shapes of the model's operations; PutHostCommandComplete has none. */
const OUTPUTS: Record<string, Shape> = {
  PollHostCommand: structure({
    HostCommand: structure({ HostCommandIdentifier: string, HostIdentifier: string, DeploymentExecutionId: string, CommandName: string, Nonce: long }),
  }),
  GetDeploymentSpecification: structure({
    DeploymentSystem: string,
    DeploymentSpecification: structure({ GenericEnvelope: ENVELOPE, VariantId: string, VariantEnvelope: ENVELOPE }),
  }),
  PutHostCommandAcknowledgement: COMMAND_STATUS_OUTPUT,
  PostHostCommandUpdate: COMMAND_STATUS_OUTPUT,
  PutHostCommandComplete: structure({}),
};

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean') return `the ${typeof value} ${String(value)}`;
  const text = JSON.stringify(value) ?? String(value);
  return `the text ${text.length > 60 ? `${text.slice(0, 60)}…` : text}`;
}

/** The member that does not fit its shape, as `HostCommand.Nonce is the text "1", not a number`; undefined when all fit. */
function mismatch(value: unknown, shape: Shape, path?: string): string | undefined {
  const what = path ?? 'the answer';
  switch (shape.kind) {
    case 'string':
      return typeof value === 'string' ? undefined : `${what} is ${kindOf(value)}, not text`;
    case 'long':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : `${what} is ${kindOf(value)}, not a number`;
    case 'structure': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${what} is ${kindOf(value)}, not an object`;
      for (const [name, member] of Object.entries(shape.members)) {
        const field = (value as Record<string, unknown>)[name];
        // Absent and null members are both "not set" in AWS JSON.
        if (!Object.hasOwn(value, name) || field === null) continue;
        const found = mismatch(field, member, path === undefined ? name : `${path}.${name}`);
        if (found) return found;
      }
      return undefined;
    }
  }
}

/** The output of `operation` from a 2xx answer's body; throws ServiceError (SerializationException) when it is not the model's shape. */
export function decodeCommandsOutput(operation: string, status: number, body: string): unknown {
  const refuse = (why: string) => new ServiceError('SerializationException', status, `${operation}: the service's answer ${why}`, redact(body.slice(0, 4096)));
  if (body.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw refuse('is not JSON');
  }
  const shape = OUTPUTS[operation];
  const found = shape && mismatch(parsed, shape);
  if (found) throw refuse(`does not match the API model: ${found}`);
  return parsed;
}
