// The `k8sdeploy` command line (bin: dist/cli.js).
import { Command, Option } from "commander";
import { k8sdeployVersion } from "../version.js";
import { registerAgentCommands } from "./agent.js";
import { registerDeploymentCommands } from "./deployments.js";
import { type OutputFormat, setGlobalOptions } from "./globals.js";
import { registerKeyCommands } from "./key.js";
import { registerServeCommand } from "./serve.js";
import { registerTrustCommands } from "./trust.js";
import { registerWebhookCommands } from "./webhook.js";

const CLIENT_ENV_HELP = `
Admin commands talk to AdminService over gRPC (the flags win over the variables):
  --server, K8SDEPLOY_SERVER      http://host:port or https://host:port (default http://127.0.0.1:50051)
  K8SDEPLOY_CA_FILE               PEM CA that signs the server's certificate (https only; default: system roots)
  --token, K8SDEPLOY_ADMIN_TOKEN  admin token (default: read <K8SDEPLOY_DATA_DIR or .k8sdeploy>/admin-token);
                                  prefer the variable: other local users can see command lines
  --output json|table             on every command (--json is an alias of --output json)
`;

export function createProgram(): Command {
  const program = new Command("k8sdeploy")
    .description("K8sDeploy orchestrator and admin CLI")
    .version(k8sdeployVersion())
    .showHelpAfterError()
    .addHelpText("after", CLIENT_ENV_HELP)
    .option("--server <url>", "orchestrator gRPC URL (default: K8SDEPLOY_SERVER)")
    .option("--token <token>", "admin token (default: K8SDEPLOY_ADMIN_TOKEN or the token file)")
    .addOption(new Option("-o, --output <format>", "output format").choices(["table", "json"]).default("table"));
  // Global options may stand before or after the subcommand; the hook hands them to the command.
  program.hook("preAction", (_program, action) => {
    const all = action.optsWithGlobals<{ server?: string; token?: string; output: OutputFormat }>();
    setGlobalOptions({ server: all.server, token: all.token, output: all.output });
  });
  registerServeCommand(program);
  registerAgentCommands(program);
  registerKeyCommands(program);
  registerDeploymentCommands(program);
  registerWebhookCommands(program);
  registerTrustCommands(program);
  return program;
}
