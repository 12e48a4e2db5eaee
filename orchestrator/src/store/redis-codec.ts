// How the Redis store serializes values: records as JSON with Dates tagged so they come back
// as Date objects, deployments and events as proto JSON, commands as base64 protobuf.
import { Command } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { Deployment, DeploymentEvent } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

interface TaggedDate {
  $date: string;
}

function isTaggedDate(value: unknown): value is TaggedDate {
  if (typeof value !== "object" || value === null) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === "$date" && typeof (value as TaggedDate).$date === "string";
}

/** JSON in which every Date becomes {"$date": ISO string}; undefined properties are left out. */
export function encodeRecord(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key: string, encoded: unknown) {
    const raw = this[key];
    return raw instanceof Date ? { $date: raw.toISOString() } : encoded;
  });
}

export function decodeRecord<T>(text: string): T {
  return JSON.parse(text, (_key, value: unknown) => (isTaggedDate(value) ? new Date(value.$date) : value)) as T;
}

export const encodeDeployment = (d: Deployment): string => JSON.stringify(Deployment.toJSON(d));
export const decodeDeployment = (text: string): Deployment => Deployment.fromJSON(JSON.parse(text));
export const encodeEvent = (e: DeploymentEvent): string => JSON.stringify(DeploymentEvent.toJSON(e));
export const decodeEvent = (text: string): DeploymentEvent => DeploymentEvent.fromJSON(JSON.parse(text));
export const encodeCommand = (c: Command): string => Buffer.from(Command.encode(c).finish()).toString("base64");
export const decodeCommand = (text: string): Command => Command.decode(Buffer.from(text, "base64"));
