// How the Redis store serializes values: records (agents, keys) as JSON with Dates tagged so they
// come back as Date objects, deployments and events as proto JSON, commands as base64 protobuf.
// (Measured: ts-proto's binary encoder, on @bufbuild/protobuf's writer, takes 3-4 times longer than
// toJSON + JSON.stringify for a deployment, and decodes no faster; so deployments stay JSON.)
import { Command } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { Deployment, DeploymentEvent } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

/** JSON in which every Date becomes {"$date": ISO string}; undefined properties are left out. */
export function encodeRecord(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key: string, encoded: unknown) {
    const raw = this[key];
    return raw instanceof Date ? { $date: raw.toISOString() } : encoded;
  });
}

/** Turns every {"$date": …} in a parsed JSON tree back into a Date (in place). */
function reviveDates(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = reviveDates(value[i]);
    return value;
  }
  const record = value as Record<string, unknown>;
  const date = record.$date;
  if (typeof date === "string") {
    let only = true;
    for (const k in record) {
      if (k !== "$date") {
        only = false;
        break;
      }
    }
    if (only) return new Date(date);
  }
  for (const k in record) record[k] = reviveDates(record[k]);
  return record;
}

/** Parses encodeRecord's JSON (a walk after JSON.parse: several times faster than a reviver). */
export function decodeRecord<T>(text: string): T {
  return reviveDates(JSON.parse(text)) as T;
}

const toBase64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");

export const encodeDeployment = (d: Deployment): string => JSON.stringify(Deployment.toJSON(d));
export const decodeDeployment = (text: string): Deployment => Deployment.fromJSON(JSON.parse(text));
export const encodeEvent = (e: DeploymentEvent): string => JSON.stringify(DeploymentEvent.toJSON(e));
export const decodeEvent = (text: string): DeploymentEvent => DeploymentEvent.fromJSON(JSON.parse(text));
export const encodeCommand = (c: Command): string => toBase64(Command.encode(c).finish());
export const decodeCommand = (text: string): Command => Command.decode(Buffer.from(text, "base64"));
