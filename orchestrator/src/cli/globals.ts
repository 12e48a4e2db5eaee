// Options every command accepts (`--server`, `--token`, `--output`), set once by program.ts's
// preAction hook from the parsed command line and read by run.ts and the output helpers.

export type OutputFormat = "table" | "json";

export interface GlobalOptions {
  /** `--server`: wins over K8SDEPLOY_SERVER. */
  server?: string | undefined;
  /** `--token`: wins over K8SDEPLOY_ADMIN_TOKEN and the token file. Never print it. */
  token?: string | undefined;
  /** `--output` (or a command's `--json`). */
  output: OutputFormat;
}

let current: GlobalOptions = { output: "table" };

export function setGlobalOptions(options: GlobalOptions): void {
  current = options;
}

export function globalOptions(): GlobalOptions {
  return current;
}

/** True when the command should print JSON: `--output json` or its `--json` alias. */
export function wantsJson(opts: { json?: boolean } = {}): boolean {
  return opts.json === true || current.output === "json";
}
