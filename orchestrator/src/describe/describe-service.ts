// Cluster look-ups answered live by the agent: a describe command goes through the agent's
// queue (so it reaches the agent on whichever replica holds its stream) and the reply comes
// back over the bus to the replica that asked.

import { validateDns1123Label } from "@k8sdeploy/proto/contract/names.js";
import type {
  ListNamespacesRequest,
  ListNamespacesResponse,
  ListWorkloadsRequest,
  ListWorkloadsResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import type { Command, DescribeReply as DescribeReplyType } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DescribeReply } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { AdminAgents } from "../agents/admin-agents.js";
import { isConnected, offlineMessage } from "../agents/connection-state.js";
import { newCommandId } from "../ids.js";
import { Code, invalidArgument, RpcError, unavailable } from "../rpc/rpc-error.js";
import type { Store, Subscription } from "../store/store.js";

interface Waiter {
  resolve(reply: DescribeReplyType): void;
}

const REASON_TO_CODE: Partial<Record<FailureReason, Code>> = {
  [FailureReason.FAILURE_REASON_PERMISSION_DENIED]: Code.PERMISSION_DENIED,
  [FailureReason.FAILURE_REASON_WORKLOAD_NOT_FOUND]: Code.NOT_FOUND,
  [FailureReason.FAILURE_REASON_INVALID_COMMAND]: Code.INVALID_ARGUMENT,
};

export class DescribeService {
  private readonly waiters = new Map<string, Waiter>();
  private subscription: Subscription | undefined;

  constructor(
    private readonly store: Store,
    private readonly agents: AdminAgents,
    private readonly timeoutMs: number,
  ) {}

  async start(): Promise<void> {
    this.subscription = await this.store.bus.subscribe((message) => {
      if (message.type !== "reply") return;
      const waiter = this.waiters.get(message.commandId);
      if (!waiter) return;
      this.waiters.delete(message.commandId);
      waiter.resolve(DescribeReply.decode(Buffer.from(message.payload, "base64")));
    });
  }

  stop(): void {
    this.subscription?.close();
  }

  listNamespaces = async (request: ListNamespacesRequest): Promise<ListNamespacesResponse> => {
    const reply = await this.ask(request.agentId, { $case: "describeNamespaces", value: {} });
    return { namespaces: reply.namespaces };
  };

  listWorkloads = async (request: ListWorkloadsRequest): Promise<ListWorkloadsResponse> => {
    const problem = validateDns1123Label(request.namespace, "namespace");
    if (problem) throw invalidArgument(problem);
    const reply = await this.ask(request.agentId, {
      $case: "describeWorkloads",
      value: { namespace: request.namespace },
    });
    return { workloads: reply.workloads };
  };

  private async ask(agentId: string, payload: NonNullable<Command["payload"]>): Promise<DescribeReplyType> {
    const agent = await this.agents.active(agentId);
    if (!isConnected(agent)) throw unavailable(offlineMessage(agent));
    const id = newCommandId();
    let timer: NodeJS.Timeout | undefined;
    const reply = new Promise<DescribeReplyType>((resolve, reject) => {
      this.waiters.set(id, { resolve });
      timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(
          new RpcError(
            Code.DEADLINE_EXCEEDED,
            `agent ${agent.id} did not answer within ${this.timeoutMs / 1000} s; it may be overloaded or reconnecting`,
          ),
        );
      }, this.timeoutMs);
    });
    reply.catch(() => {}); // awaited below; this only keeps an early timeout from going unhandled
    try {
      await this.store.queue.enqueue(agent.id, { id, createdAt: new Date(), payload });
      await this.store.bus.publish({ type: "queued", agentId: agent.id });
      const answer = await reply;
      if (answer.error) {
        throw new RpcError(
          REASON_TO_CODE[answer.error.reason] ?? Code.UNKNOWN,
          `agent ${agent.id}: ${answer.error.message}`,
        );
      }
      return answer;
    } finally {
      clearTimeout(timer);
      this.waiters.delete(id);
    }
  }
}
