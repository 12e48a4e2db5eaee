// The `k8sdeploy` command line (bin: dist/cli.js).
import { Command } from "commander";
import { k8sdeployVersion } from "../version.js";
import { registerAgentCommands } from "./agent.js";
import { registerDeploymentCommands } from "./deployments.js";
import { registerKeyCommands } from "./key.js";
import { registerServeCommand } from "./serve.js";
import { registerWebhookCommands } from "./webhook.js";

const CLIENT_ENV_HELP = `
Admin commands talk to AdminService over gRPC:
  K8SDEPLOY_SERVER       http://host:port or https://host:port (default http://127.0.0.1:50051)
  K8SDEPLOY_CA_FILE      PEM CA that signs the server's certificate (https only; default: system roots)
  K8SDEPLOY_ADMIN_TOKEN  admin token (default: read <K8SDEPLOY_DATA_DIR or .k8sdeploy>/admin-token)`;

export function createProgram(): Command {
  const program = new Command("k8sdeploy")
    .description("K8sDeploy orchestrator and admin CLI")
    .version(k8sdeployVersion())
    .showHelpAfterError()
    .addHelpText("after", CLIENT_ENV_HELP);
  registerServeCommand(program);
  registerAgentCommands(program);
  registerKeyCommands(program);
  registerDeploymentCommands(program);
  registerWebhookCommands(program);
  return program;
}
