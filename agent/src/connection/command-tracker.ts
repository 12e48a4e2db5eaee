// Applies each command id at most once and makes sure its outcome reaches the orchestrator.
//
// Delivery is at least once: the same command id can arrive again (after a reconnect or an
// orchestrator failover). The tracker keeps, per command id, the running job, its latest progress
// and its final message (`result` or `describe_reply`):
//   - a new id starts the job;
//   - a duplicate of a running command re-sends the latest progress; the final message goes to
//     whatever stream is current when the job finishes;
//   - a duplicate of a finished command re-sends the same final message.
// A final message counts as delivered only once the orchestrator acknowledged storing it
// (`result_ack`), or — with an orchestrator that does not acknowledge results — once written to a
// live stream; undelivered ones are kept and sent again when the next stream is accepted
// (`attach`). Finished entries are kept, most recently used first, up to `maxFinished`
// (undelivered ones are evicted last).
import type {
  CommandProgress,
  CommandResult,
  ConnectRequest,
  DescribeReply,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeploymentState, FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

export type Outgoing = NonNullable<ConnectRequest["msg"]>;
export type FinalMessage = { $case: "result"; value: CommandResult } | { $case: "describeReply"; value: DescribeReply };

/** Where messages go: the current accepted stream. Resolves true once written to it. */
export interface Sink {
  send(message: Outgoing): Promise<boolean>;
  /** The orchestrator acknowledges stored results; a written result is not delivered until then. */
  readonly acksResults?: boolean;
}

/** The work of one command. Reports progress (without command id) and returns its final message. */
export type Job = (onProgress: (progress: Omit<CommandProgress, "commandId">) => void) => Promise<FinalMessage>;

export type SubmitOutcome = "started" | "running" | "finished";

interface Entry {
  readonly id: string;
  status: "running" | "finished";
  latestProgress?: CommandProgress;
  /** Images from the first progress event that carried them (sent once by executors). */
  previousImages?: CommandProgress["previousImages"];
  appliedImages?: CommandProgress["appliedImages"];
  final?: FinalMessage;
  delivered: boolean;
}

export interface TrackerEvents {
  /** A finished entry was dropped before its final message was delivered (capacity reached). */
  onEvictUndelivered?: (commandId: string) => void;
  /** A job threw (executors should not); the error became a FAILED result. */
  onJobError?: (commandId: string, error: unknown) => void;
}

export const DEFAULT_MAX_FINISHED = 1000;

export class CommandTracker {
  private readonly running = new Map<string, Entry>();
  /** Finished entries, least recently used first (Map keeps insertion order). */
  private readonly finished = new Map<string, Entry>();
  private sink: Sink | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly maxFinished: number;

  constructor(
    options: { maxFinished?: number } = {},
    private readonly events: TrackerEvents = {},
  ) {
    this.maxFinished = options.maxFinished ?? DEFAULT_MAX_FINISHED;
    if (!(this.maxFinished >= 1)) throw new RangeError("maxFinished must be at least 1");
  }

  /** True if the id is running or remembered as finished. */
  has(id: string): boolean {
    return this.running.has(id) || this.finished.has(id);
  }

  state(id: string): "running" | "finished" | undefined {
    return this.running.has(id) ? "running" : this.finished.has(id) ? "finished" : undefined;
  }

  /** Ids being executed right now (for `hello.running_command_ids`). */
  runningIds(): string[] {
    return [...this.running.keys()];
  }

  /** Finished commands whose final message has not been written to a stream yet. */
  undeliveredIds(): string[] {
    return [...this.finished.values()].filter((e) => !e.delivered).map((e) => e.id);
  }

  get finishedCount(): number {
    return this.finished.size;
  }

  /**
   * Handles a received command: starts `job` for a new id; for a known id re-sends what the
   * orchestrator may have missed and never runs the job.
   */
  submit(id: string, job: Job): SubmitOutcome {
    const active = this.running.get(id);
    if (active !== undefined) {
      const progress = this.progressToResend(active);
      if (progress !== undefined) void this.sink?.send({ $case: "progress", value: progress });
      return "running";
    }
    const done = this.finished.get(id);
    if (done !== undefined) {
      this.finished.delete(id); // touch: most recently used
      this.finished.set(id, done);
      void this.deliver(done);
      return "finished";
    }
    const entry: Entry = { id, status: "running", delivered: false };
    this.running.set(id, entry);
    void this.execute(entry, job);
    return "started";
  }

  /** A stream was accepted: send it every undelivered final message, then the latest progress of running commands. */
  attach(sink: Sink): void {
    this.sink = sink;
    for (const entry of [...this.finished.values()]) {
      if (!entry.delivered) void this.deliver(entry);
    }
    for (const entry of this.running.values()) {
      const progress = this.progressToResend(entry);
      if (progress !== undefined) void sink.send({ $case: "progress", value: progress });
    }
  }

  /** The orchestrator stored the final message of `id`: it need not be sent again. */
  acknowledge(id: string): void {
    const entry = this.finished.get(id);
    if (entry === undefined || entry.delivered) return;
    entry.delivered = true;
    this.evict();
    this.changed();
  }

  /** The stream ended: keep everything until the next one. */
  detach(sink: Sink): void {
    if (this.sink === sink) this.sink = undefined;
  }

  /** Resolves once nothing is running and every final message was delivered. */
  whenSettled(): Promise<void> {
    return this.waitFor(() => this.running.size === 0 && this.undeliveredIds().length === 0);
  }

  /** Resolves once nothing is running. */
  whenIdle(): Promise<void> {
    return this.waitFor(() => this.running.size === 0);
  }

  private waitFor(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (condition()) {
          this.waiters.delete(check);
          resolve();
        }
      };
      this.waiters.add(check);
    });
  }

  private changed(): void {
    for (const check of [...this.waiters]) check();
  }

  private async execute(entry: Entry, job: Job): Promise<void> {
    const onProgress = (p: Omit<CommandProgress, "commandId">) => {
      if (entry.status !== "running") return; // late events after the result are dropped
      const progress: CommandProgress = { ...p, commandId: entry.id };
      entry.latestProgress = progress;
      if (entry.previousImages === undefined && p.previousImages.length > 0) entry.previousImages = p.previousImages;
      if (entry.appliedImages === undefined && p.appliedImages.length > 0) entry.appliedImages = p.appliedImages;
      void this.sink?.send({ $case: "progress", value: progress });
    };
    let final: FinalMessage;
    try {
      final = await job(onProgress);
    } catch (error) {
      this.events.onJobError?.(entry.id, error);
      final = {
        $case: "result",
        value: {
          commandId: entry.id,
          state: DeploymentState.DEPLOYMENT_STATE_FAILED,
          failure: {
            reason: FailureReason.FAILURE_REASON_UNSPECIFIED,
            message: `agent error: ${error instanceof Error ? error.message : String(error)}`,
          },
          message: "the agent failed to execute the command",
          previousImages: [],
          appliedImages: [],
          resolvedDigest: "",
        },
      };
    }
    final.value.commandId = entry.id;
    entry.final = final;
    entry.status = "finished";
    this.running.delete(entry.id);
    this.finished.set(entry.id, entry);
    this.evict();
    this.changed();
    await this.deliver(entry);
  }

  private async deliver(entry: Entry): Promise<void> {
    const sink = this.sink;
    if (sink === undefined || entry.final === undefined) return;
    const written = await sink.send(entry.final);
    if (written && !entry.delivered && !sink.acksResults) {
      entry.delivered = true;
      this.evict();
      this.changed();
    }
  }

  /** The latest progress, completed with the images the orchestrator may have missed. */
  private progressToResend(entry: Entry): CommandProgress | undefined {
    const p = entry.latestProgress;
    if (p === undefined) return undefined;
    return {
      ...p,
      previousImages: p.previousImages.length > 0 ? p.previousImages : (entry.previousImages ?? []),
      appliedImages: p.appliedImages.length > 0 ? p.appliedImages : (entry.appliedImages ?? []),
    };
  }

  private evict(): void {
    while (this.finished.size > this.maxFinished) {
      let victim: Entry | undefined;
      for (const e of this.finished.values()) {
        if (e.delivered) {
          victim = e;
          break;
        }
      }
      if (victim === undefined) {
        // Every remembered result is undelivered: drop the oldest. If the orchestrator redelivers
        // that command it will be executed again.
        victim = this.finished.values().next().value!;
        this.events.onEvictUndelivered?.(victim.id);
      }
      this.finished.delete(victim.id);
    }
  }
}
