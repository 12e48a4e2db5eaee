// Output helpers shared by the CLI commands: tables, enum names, JSON, errors.
import * as grpc from "@grpc/grpc-js";
import { type ConnectionState, connectionStateToJSON } from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import {
  DeploymentState,
  deploymentStateFromJSON,
  deploymentStateToJSON,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { InvalidArgumentError } from "commander";
import { ConfigError } from "../config.js";
import { isServiceError } from "./admin-client.js";
import { ClientConfigError } from "./client-config.js";

/** An error whose message is shown as is. */
export class CliError extends Error {
  override readonly name = "CliError";
}

/** `DEPLOYMENT_STATE_ROLLED_BACK` → `rolled_back`. */
export function deploymentStateName(state: DeploymentState): string {
  return deploymentStateToJSON(state)
    .replace(/^DEPLOYMENT_STATE_/, "")
    .toLowerCase();
}

/** `CONNECTION_STATE_NEVER_CONNECTED` → `never_connected`. */
export function connectionStateName(state: ConnectionState): string {
  return connectionStateToJSON(state)
    .replace(/^CONNECTION_STATE_/, "")
    .toLowerCase();
}

/** The states `--state` accepts, in proto order. */
export const deploymentStateNames: readonly string[] = Object.values(DeploymentState)
  .filter((v): v is DeploymentState => typeof v === "number" && v > 0)
  .map(deploymentStateName);

/** Commander argument parser: `failed`, `in-progress`, `ROLLED_BACK`, … → DeploymentState. */
export function parseDeploymentState(value: string, previous: DeploymentState[] = []): DeploymentState[] {
  const key = `DEPLOYMENT_STATE_${value
    .trim()
    .toUpperCase()
    .replaceAll("-", "_")
    .replace(/^DEPLOYMENT_STATE_/, "")}`;
  const state = deploymentStateFromJSON(key);
  if (state === DeploymentState.UNRECOGNIZED || state === DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED) {
    throw new InvalidArgumentError(`expected one of ${deploymentStateNames.join(", ")}`);
  }
  return [...previous, state];
}

/** Commander argument parser for whole numbers in [min, max]. */
export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError("not a whole number");
    const n = Number(value.trim());
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    return n;
  };
}

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns separated by two spaces. */
export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  process.stdout.write(`${[line(headers), ...rows.map(line)].join("\n")}\n`);
}

/** Two-column key/value listing. */
export function printFields(fields: [string, string][]): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  process.stdout.write(`${fields.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n")}\n`);
}

export function formatTime(date: Date | undefined): string {
  return date ? date.toISOString().replace(/\.\d{3}Z$/, "Z") : "-";
}

export function warn(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

/** Prints `error: <message>` and returns the exit code (1). */
export function printError(message: string): number {
  process.stderr.write(`error: ${message}\n`);
  return 1;
}

/** Prints `error: …` for any error and returns the exit code. */
export function reportError(err: unknown): number {
  let message: string;
  if (isServiceError(err)) {
    message = `${grpc.status[err.code] ?? `code ${err.code}`}: ${err.details || "(no details)"}`;
  } else if (err instanceof ConfigError) {
    message = `invalid configuration:\n${err.issues.map((i) => `  ${i.variable}: ${i.message}`).join("\n")}`;
  } else if (err instanceof CliError || err instanceof ClientConfigError) {
    message = err.message;
  } else {
    message = err instanceof Error ? err.message : String(err);
  }
  process.stderr.write(`error: ${message}\n`);
  return 1;
}
